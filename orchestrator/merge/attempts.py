"""A train's attempts at landing, for the merge queue (``merge.queue``): each attempt one
worker-thread call on the local base (``merge.local``) or the remote's steps
(``merge.remote``), retried on a moved base, waited on a git lock file, split when the train
is in its own way.

A moved base is retried at once, then with jittered exponential backoff (``max_attempts``,
about 3 s in all by default, then ``MergeContention``). A git lock file a live process may
hold is looked at again every ``_LOCK_POLL`` seconds for up to ``lock_wait`` seconds; a stale
one, or one still there after that, is ``BaseLocked``.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from typing import Protocol, TypeVar, runtime_checkable

import anyio
import anyio.to_thread

from orchestrator.errors import BaseLocked, CouncilError, MergeContention
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.merge.attempt import Request, Retry
from orchestrator.merge.cars import Outcome, Split
from orchestrator.merge.local import LocalBase, Locked
from orchestrator.merge.remote import BeforePush, RemoteBase
from orchestrator.safety.crashpoints import crash_point

__all__ = ["WAITED", "Attempts", "TakesInCall", "Waited"]

T = TypeVar("T")

_BACKOFF_START = 0.01  # seconds before the third attempt; doubles each time after
_BACKOFF_CAP = 1.0
_LOCK_POLL = 0.1  # seconds between looks at a git lock file a live process holds


@runtime_checkable
class TakesInCall(Protocol):
    """A merge lock whose taking (its try, its token, the record naming its holder) rides in
    the first blocking work run under it (``locks.merge_lock.MergeHold``): the first local
    attempt, so the record's write costs no worker-thread call of its own; and when that
    attempt settles the train (``last``), its letting go rides there too."""

    async def take_in(
        self, work: Callable[[], T], last: Callable[[T], bool] | None = None
    ) -> tuple[bool, T | None]:
        """``(True, what work gave)``, the lock taken in work's call; ``(False, None)``: the
        lock was waited for (another process held it) and is taken now, work not run.
        ``last``: when it says so of what work gave, nothing more is done under the lock,
        which is let go in work's call (its record deleted there once work answered)."""
        ...


class Waited:
    """The merge lock was waited for (held by another process): taken now, nothing tried;
    the train may take aboard what came meanwhile before its attempts (``land``)."""


WAITED = Waited()


class Attempts:
    """The attempts of one merge queue's trains."""

    def __init__(
        self,
        git: Git,
        base_branch: str,
        local: LocalBase,
        remote: RemoteBase | None,
        *,
        max_attempts: int,
        lock_wait: float,
    ) -> None:
        self.git = git
        self.base_branch = base_branch
        self._local = local
        self._remote = remote
        self.max_attempts = max_attempts
        self.lock_wait = lock_wait

    async def land(
        self,
        requests: list[Request],
        before_push: BeforePush | None = None,
        *,
        taking: TakesInCall | None = None,
    ) -> list[Outcome] | Waited:
        """Land a train: each request's outcome (a result, or the error that is its alone),
        in order. A whole-train failure (contention, a lock, a refused push) raises.

        ``taking``: the merge lock, not yet taken; taken in the first attempt's call, ahead
        of the crash point ``merge.locked`` and the attempt (on a remote, in a call of its own
        before the first fetch). Without one the lock is held already (``merge.locked`` was
        passed). ``WAITED`` (only with ``taking``): the lock was waited for and is taken
        now, nothing tried, ``merge.locked`` not passed yet."""
        if taking is not None and self._remote is not None:
            ran, _ = await taking.take_in(_locked)
            if not ran:
                return WAITED
            taking = None
        calls = GitCalls(self.git)
        outcomes: list[Outcome | None] = [None] * len(requests)
        failed: dict[str, Exception] = {}  # task id -> its own error, final (``Cars.failed``)
        last = Retry()
        attempt = 0
        locked_since: float | None = None
        while attempt < self.max_attempts:
            # An error is final (a secret masked, a claim lost, a branch gone): only the
            # results are worked out again on a moved base.
            for i, request in enumerate(requests):
                if request.task_id in failed:
                    outcomes[i] = failed[request.task_id]
            riding = [i for i, o in enumerate(outcomes) if not isinstance(o, Exception)]
            aboard = [requests[i] for i in riding]
            if not aboard:
                return [o for o in outcomes if o is not None]
            if self._remote is not None:
                outcome: list[Outcome] | Retry | Locked | Split
                outcome = await self._remote.attempt(
                    calls, aboard, attempt + 1, failed, before_push
                )
            elif taking is not None:
                attempt_now = partial(self._local.attempt, calls, aboard, failed)
                # A train settled by its first attempt (the usual case) lets go of the lock
                # in that call, after its ref update; one tried again keeps it.
                ran, first = await taking.take_in(partial(_locked_then, attempt_now), _settled)
                if not ran or first is None:
                    return WAITED
                outcome, taking = first, None
            else:
                outcome = await anyio.to_thread.run_sync(self._local.attempt, calls, aboard, failed)
            if isinstance(outcome, list):
                for i, found in zip(riding, outcome, strict=True):
                    outcomes[i] = (
                        found
                        if isinstance(found, Exception)
                        else replace(found, attempts=attempt + 1, git_calls=calls.count)
                    )
                return [o for o in outcomes if o is not None]
            if isinstance(outcome, Split):
                # Landing the train at once is in the way of one of them (the base's checkout
                # would block a later one): each goes by itself, in order, in this lock hold.
                for i, request in zip(riding, aboard, strict=True):
                    try:
                        alone = await self.land([request], before_push)
                        assert not isinstance(alone, Waited)  # (no taking: never)
                        outcomes[i] = alone[0]
                    except CouncilError as exc:
                        outcomes[i] = exc
                return [o for o in outcomes if o is not None]
            if isinstance(outcome, Locked):
                # Not an attempt that lost a race: waiting for a lock is bounded by time.
                now = time.monotonic()
                locked_since = now if locked_since is None else locked_since
                waited = now - locked_since
                if any(lock.stale for lock in outcome.locks) or waited >= self.lock_wait:
                    described = [lock.describe() for lock in outcome.locks]
                    raise BaseLocked(self.base_branch, described, waited)
                await anyio.sleep(min(_LOCK_POLL, self.lock_wait - waited))
                continue
            attempt += 1
            last = outcome
            if attempt < self.max_attempts:
                await anyio.sleep(_backoff(attempt))
        raise MergeContention(self.base_branch, self.max_attempts, last.reason)


def _locked() -> None:
    """The merge lock just taken: crash point ``merge.locked``."""
    crash_point("merge.locked")


def _locked_then(then: Callable[[], T]) -> T:
    """``_locked``, then ``then``'s work (the first attempt), in the same call."""
    _locked()
    return then()


def _settled(outcome: object) -> bool:
    """Whether a local attempt's outcome settles its train: nothing more under the lock."""
    return isinstance(outcome, list)


def _backoff(attempt: int) -> float:
    """Seconds to wait before attempt ``attempt + 1``.

    The first retry is immediate: usually one other writer landed one commit, and recomputing
    at once is the fastest way to follow it. After that, a writer outside our lock is merging
    in a tight loop, and it always wins a race it started first (it begins its next merge the
    moment its update lands, we only after noticing ours failed); backing off, jittered so two
    queues do not stay in step, lets its burst finish instead of losing every race to it.
    """
    if attempt <= 1:
        return 0.0
    jitter = 0.5 + secrets.randbelow(1001) / 1000
    return min(_BACKOFF_CAP, _BACKOFF_START * 2.0 ** (attempt - 2)) * jitter
