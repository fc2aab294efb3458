"""Rules about records that every backend applies the same way: which fields only the store
writes, a claim's fencing token, what a claim event says, how new ids look."""

from __future__ import annotations

import secrets
from datetime import datetime, timedelta
from enum import Enum

from orchestrator.errors import StaleClaim
from orchestrator.events import Event, EventType
from orchestrator.events.state import ClaimAcquired, ClaimExpired, ClaimReleased, ClaimRenewed
from orchestrator.models import Claim, ClaimStatus, TaskState, utcnow

__all__ = [
    "STORE_OWNED",
    "ClaimStep",
    "adopted",
    "check_fence",
    "claim_event",
    "claim_step",
    "new_claim",
    "new_id",
]

STORE_OWNED = frozenset({"version", "updated_at"})  # fields only the store writes


def check_fence(task_id: str, current: TaskState | None, token: int) -> Claim:
    claim = current.claim if current is not None else None
    if claim is None or claim.token != token or claim.status != ClaimStatus.ACTIVE:
        raise StaleClaim(f"tasks/{task_id}", token, claim.token if claim else None)
    return claim


class ClaimStep(Enum):
    """What ``acquire_claim`` does with a task as it finds it."""

    REFUSE = "refuse"  # someone else holds a live claim, or the task changed since it was read
    ADOPT = "adopt"  # the holder already holds a live claim on it: keep it, renewed
    NEW = "new"  # no live claim: a new one, with a new token


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


def adopted(claim: Claim, now: datetime, lease_seconds: float) -> Claim:
    """A holder that claims a task it already holds keeps its claim and token, renewed: the
    write of its first claim may have been committed while its answer was lost (a connection
    dropped), or a release of its own failed; either way nobody else holds the task."""
    return claim.model_copy(
        update={"renewed_at": now, "expires_at": now + timedelta(seconds=lease_seconds)}
    )


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


def new_id(prefix: str) -> str:
    stamp = utcnow().strftime("%Y%m%dt%H%M%S%f")
    return f"{prefix}-{stamp}-{secrets.token_hex(3)}"
