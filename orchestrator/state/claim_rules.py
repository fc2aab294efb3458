"""The rules of claims on tasks, the same in every backend: whether a claim may be taken,
adopted, renewed, released or expired, what a claim write sets, which event it emits with what
data, and which error refuses it with what message. Pure: no I/O, no clock, no backend.

A backend keeps only its storage mechanics: how it locks the task's record, where its fencing
tokens come from (the file backend's counter, PostgreSQL's sequence), whose clock says ``now``,
how it writes the record. The flow of each operation, in every backend:

- acquire: ``check_task_id``; lock and read the task; ``existing_task``; ``acquisition`` (``None``:
  refused); write ``fields``; emit ``event()``.
- renew / release: ``renewal`` / ``release`` (a release's status is checked before any I/O);
  ``check_task_id``; lock and read; ``existing_task``; ``check_fence``; write
  ``change.fields(claim, now, current)``; emit ``change.event(written)``.
- sweep: find the tasks whose claim ``lapsed``; lock and read each; ``expiry`` (``None``:
  renewed or released meanwhile); write ``fields``; emit ``event()``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import Enum
from typing import Any

from orchestrator.errors import RecordNotFound, StaleClaim, StateError
from orchestrator.events import Event, EventType
from orchestrator.events.state import ClaimAcquired, ClaimExpired, ClaimReleased, ClaimRenewed
from orchestrator.ids import check_id
from orchestrator.models import Claim, ClaimStatus, TaskState

__all__ = [
    "RELEASE_STATUSES",
    "ClaimStep",
    "ClaimUpdatesTold",
    "ClaimWrite",
    "FencedChange",
    "ReleaseFirst",
    "acquisition",
    "adopted",
    "check_fence",
    "check_task_id",
    "claim_event",
    "claim_step",
    "existing_task",
    "expiry",
    "held_claim",
    "lapsed",
    "new_claim",
    "release",
    "renewal",
    "told",
]

RELEASE_STATUSES = (ClaimStatus.COMPLETED, ClaimStatus.ABANDONED)  # how a holder lets go


def check_task_id(task_id: str) -> None:
    """The id a claim operation is given, checked before the store is touched."""
    check_id(task_id, "task id")


def existing_task(task_id: str, current: TaskState | None) -> TaskState:
    """The task as read, or ``RecordNotFound`` if there is none."""
    if current is None:
        raise RecordNotFound(f"task {task_id!r} does not exist")
    return current


def check_fence(task_id: str, current: TaskState | None, token: int) -> Claim:
    """The task's live claim if ``token`` is its token, else ``StaleClaim``."""
    claim = current.claim if current is not None else None
    if claim is None or claim.token != token or claim.status != ClaimStatus.ACTIVE:
        raise StaleClaim(f"tasks/{task_id}", token, claim.token if claim else None)
    return claim


def held_claim(written: TaskState) -> Claim:
    """The claim a claim write left on the task (every claim write sets one)."""
    if written.claim is None:
        raise StateError(f"task {written.task_id!r} was written by a claim write without a claim")
    return written.claim


class ClaimStep(Enum):
    """What ``acquire_claim`` does with a task as it finds it."""

    REFUSE = "refuse"  # someone else holds a live claim, or the task changed since it was read
    ADOPT = "adopt"  # the holder already holds a live claim on it: keep it, renewed
    NEW = "new"  # no live claim: a new one, with a new token


# ``acquire_claim``'s updates as a function of the task as the store finds it, under the
# claim's lock or in its transaction: the caller's read and its claim are one step (one
# worker-thread call, one transaction). None: the caller does not claim the task as it is.
ClaimUpdates = Callable[[TaskState], Mapping[str, Any] | None]
# ``release_claim``'s updates made the same way: the holder's read and its last write in one
# step (a function of the task as found; it may be called again should the store try again).
ReleaseUpdates = Callable[[TaskState], Mapping[str, Any]]


@dataclass(frozen=True, slots=True)
class ClaimUpdatesTold:
    """``ClaimUpdates`` (``make``) whose caller is told the task its claim wrote (``then``,
    on the event loop, once the call is over: not called when nothing was written), so it
    needs no read of its own to know it (the scheduler's view takes it as read)."""

    make: ClaimUpdates
    then: Callable[[TaskState], None]

    def __call__(self, state: TaskState) -> Mapping[str, Any] | None:
        return self.make(state)


def told(updates: Mapping[str, Any] | ClaimUpdates | None, written: TaskState | None) -> None:
    """Tell ``updates`` the task its claim wrote, when it asks to be told
    (``ClaimUpdatesTold``) and the claim wrote one."""
    if written is not None and isinstance(updates, ClaimUpdatesTold):
        updates.then(written)


# A claim's release made first in another store call (``release_claim_then_delete_made``): a
# room that releases a claim right before a store call of another room's (the landing, before
# its worktree's removal and its records' deletion) hands the release over instead of making
# a store call of its own; the store writes it first, then runs that call, in one
# worker-thread call where it can (the file store). ``then`` is blocking work run right after
# the release is written, before anything else of the call (a crash point); it must not raise.
def _no_step() -> None:
    """No step after the release."""


@dataclass(frozen=True, slots=True)
class ReleaseFirst:
    """``release_claim(task_id, token, status, updates)`` made first in another call; ``told``
    is given the task it wrote, on the event loop, once the release is written (module doc)."""

    task_id: str
    token: int
    status: ClaimStatus
    updates: Mapping[str, Any] | ReleaseUpdates | None
    told: Callable[[TaskState], None]
    then: Callable[[], None] = _no_step


def claim_step(
    current: TaskState, holder: str, now: datetime, expected_version: int | None
) -> ClaimStep:
    """Which ``ClaimStep`` an acquire by ``holder`` takes (``expected_version``: the version
    the caller read, if it claims only that one)."""
    claim = current.claim
    if claim is not None and claim.is_live(now):
        return ClaimStep.ADOPT if claim.holder == holder else ClaimStep.REFUSE
    if expected_version is not None and current.version != expected_version:
        return ClaimStep.REFUSE  # written since the caller read it: not its to claim now
    return ClaimStep.NEW


def new_claim(
    current: TaskState, holder: str, now: datetime, lease_seconds: float, drawn: int
) -> Claim:
    """A new claim with token ``drawn`` (from the backend's counter), never below the token
    of the task's last claim + 1."""
    floor = current.claim.token + 1 if current.claim else 1
    return Claim(
        task_id=current.task_id,
        holder=holder,
        token=max(drawn, floor),
        acquired_at=now,
        renewed_at=now,
        expires_at=now + timedelta(seconds=lease_seconds),
    )


def _extended(claim: Claim, now: datetime, lease_seconds: float) -> Claim:
    return claim.model_copy(
        update={"renewed_at": now, "expires_at": now + timedelta(seconds=lease_seconds)}
    )


def adopted(claim: Claim, now: datetime, lease_seconds: float) -> Claim:
    """A holder that claims a task it already holds keeps its claim and token, renewed: the
    write of its first claim may have been committed while its answer was lost (a connection
    dropped), or a release of its own failed; either way nobody else holds the task."""
    return _extended(claim, now, lease_seconds)


def lapsed(claim: Claim | None, now: datetime) -> bool:
    """Whether ``claim`` is active with its lease run out at ``now``: the sweep expires it."""
    return claim is not None and claim.status == ClaimStatus.ACTIVE and claim.expires_at <= now


_CLAIM_EVENTS: dict[str, type[ClaimAcquired | ClaimRenewed | ClaimReleased | ClaimExpired]] = {
    EventType.CLAIM_ACQUIRED: ClaimAcquired,
    EventType.CLAIM_RENEWED: ClaimRenewed,
    EventType.CLAIM_RELEASED: ClaimReleased,
    EventType.CLAIM_EXPIRED: ClaimExpired,
}


def claim_event(event_type: EventType, claim: Claim) -> Event:
    return _CLAIM_EVENTS[event_type](
        task_id=claim.task_id,
        holder=claim.holder,
        token=claim.token,
        status=claim.status,
        expires_at=claim.expires_at,
    )


@dataclass(frozen=True)
class ClaimWrite:
    """A claim write decided from the task as read: the fields it sets and its event."""

    claim: Claim  # the claim the task holds after the write
    fields: dict[str, Any]  # what the write sets on the task
    event_type: EventType
    new: bool = False  # a new claim with a new token (not an adopted or expired one)

    def event(self) -> Event:
        return claim_event(self.event_type, self.claim)


def acquisition(
    current: TaskState,
    holder: str,
    now: datetime,
    lease_seconds: float,
    updates: Mapping[str, Any] | ClaimUpdates | None,
    expected_version: int | None,
    draw: Callable[[], int],
) -> ClaimWrite | None:
    """What ``acquire_claim`` by ``holder`` writes on ``current``, or ``None`` if it is refused
    (``ClaimStep``), or if ``updates``, a function of the task as found, gives None for it.
    ``draw`` gives a fresh fencing token; it is called only for a new claim."""
    step = claim_step(current, holder, now, expected_version)
    if step is ClaimStep.REFUSE:
        return None
    if callable(updates):
        updates = updates(current)  # the caller's decision on the task as it is now
        if updates is None:
            return None
    if step is ClaimStep.ADOPT:
        assert current.claim is not None
        claim = adopted(current.claim, now, lease_seconds)
        kind = EventType.CLAIM_RENEWED
    else:
        claim = new_claim(current, holder, now, lease_seconds, draw())
        kind = EventType.CLAIM_ACQUIRED
    return ClaimWrite(claim, {**(updates or {}), "claim": claim}, kind, step is ClaimStep.NEW)


@dataclass(frozen=True)
class FencedChange:
    """A write by the holder of a claim (renew, release), once its token passed the fence:
    ``fields`` from the live claim and the store's ``now``, ``event`` from the task written."""

    event_type: EventType
    change: Callable[[Claim, datetime, TaskState], dict[str, Any]]

    def fields(self, claim: Claim, now: datetime, current: TaskState) -> dict[str, Any]:
        """What the write sets on ``current`` (the task as found under its lock), for the
        live ``claim`` at ``now``."""
        return self.change(claim, now, current)

    def event(self, written: TaskState) -> Event:
        return claim_event(self.event_type, held_claim(written))


def renewal(lease_seconds: float) -> FencedChange:
    """A heartbeat: the lease runs ``lease_seconds`` from now, the token stays."""

    def change(claim: Claim, now: datetime, current: TaskState) -> dict[str, Any]:
        return {"claim": _extended(claim, now, lease_seconds)}

    return FencedChange(EventType.CLAIM_RENEWED, change)


def release(
    status: ClaimStatus, updates: Mapping[str, Any] | ReleaseUpdates | None
) -> FencedChange:
    """Its holder lets the claim go as ``status`` (completed or abandoned), writing ``updates``
    with it (or what ``updates`` makes of the task as found under the claim's lock); any other
    status is refused here, before the store is touched."""
    if status not in RELEASE_STATUSES:
        raise StateError(f"a claim is released as completed or abandoned, not {status}")

    def change(claim: Claim, now: datetime, current: TaskState) -> dict[str, Any]:
        released = claim.model_copy(update={"status": status, "released_at": now})
        fields = updates(current) if callable(updates) else updates
        return {**(fields or {}), "claim": released}

    return FencedChange(EventType.CLAIM_RELEASED, change)


def expiry(current: TaskState | None, now: datetime) -> ClaimWrite | None:
    """The sweep's write on ``current`` if its claim ``lapsed`` at ``now``, else ``None`` (gone,
    renewed or released since the sweep looked)."""
    if current is None or not lapsed(current.claim, now):
        return None
    assert current.claim is not None
    gone = current.claim.model_copy(update={"status": ClaimStatus.EXPIRED})
    return ClaimWrite(gone, {"claim": gone}, EventType.CLAIM_EXPIRED)
