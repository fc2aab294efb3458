"""The merge lock across workstations: a lease record in the team's store.

Landings on the team's remote are made safe by the remote itself (a push with a lease on the
tip it was built on); this lock only keeps workstations from building merge commits that are
bound to lose the race, so with several of them landing at once each landing is built once
instead of again and again. It is therefore never waited for forever, and losing it changes
nothing about correctness:

- one record (namespace ``team-merge-lock``, key: the base branch) names its holder; taking it
  is a compare-and-set (creating it where none is, without reading first), and its version is
  the holder's fence;
- a holder that died leaves its record behind: a waiter that has seen the same version for
  longer than ``lease`` seconds of its own monotonic clock replaces it (no clock of another
  machine is compared with this one's);
- a waiter gives up waiting after ``lease`` seconds and lands anyway (the remote's lease still
  decides), counted from its first read and decided on the same reading of the clock as the
  lapse, so a dead holder's record is always replaced rather than given up on (counted from
  before the first read, a slow read made the waiter give up just before the lapse it was
  waiting for, often on a loaded machine); releasing removes the record only if it is still
  the holder's (its random token: versions start again once a record is removed, so a version
  alone could name another).

``tried()`` is the same lock for a caller that has something else to do while it is held (the
team's landing train, ``scheduler.team.train``: a workstation whose branches a teammate may land
meanwhile): one look, taken when free or when its holder's record has stood unchanged for
``lease`` seconds across this instance's looks, else not had, at once.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import anyio

from orchestrator.errors import StateError, VersionConflict
from orchestrator.ids import check_id
from orchestrator.models import utcnow
from orchestrator.state.protocol import StateStore

__all__ = ["LEASE", "NAMESPACE", "TeamMergeLock", "lease_for"]

NAMESPACE = "team-merge-lock"
LEASE = 30.0  # seconds: a landing takes well under one; a dead holder's lock lapses


def lease_for(stale_threshold: float) -> float:
    """The lock's lease in a run whose claims lapse after ``stale_threshold`` seconds."""
    return min(LEASE, stale_threshold)


log = logging.getLogger(__name__)

_POLL_FIRST = 0.02
_POLL_MAX = 0.5


class TeamMergeLock:
    def __init__(self, store: StateStore, base_branch: str, holder: str, lease: float) -> None:
        self._store = store
        self._key = check_id(base_branch.replace("/", "-").lower()[:64], "merge lock key")
        self._holder = holder
        self._lease = lease
        self._seen: tuple[int, float] | None = None  # ``tried``: the holder's version, first seen

    def held(self) -> contextlib.AbstractAsyncContextManager[bool]:
        """Hold the team's merge lock for the block; yields whether it was had (False when
        not in time: the block runs anyway, the remote's lease keeps it safe)."""
        return self._holding(self._acquire)

    def tried(self) -> contextlib.AbstractAsyncContextManager[bool]:
        """One look at the lock (module doc): held for the block when it yields True."""
        return self._holding(self._try)

    @contextlib.asynccontextmanager
    async def _holding(self, take: Callable[[str], Awaitable[bool]]) -> AsyncIterator[bool]:
        token = secrets.token_hex(8)
        had = await take(token)
        try:
            yield had
        finally:
            if had:
                with anyio.CancelScope(shield=True):
                    await self._release(token)

    async def _try(self, token: str) -> bool:
        data = self._data(token)
        store = self._store
        try:
            try:
                await store.put_record(NAMESPACE, self._key, data, 0)
                self._seen = None
                return True
            except VersionConflict:
                pass
            record = await store.get_record(NAMESPACE, self._key)
            if record is None:
                await store.put_record(NAMESPACE, self._key, data, 0)
                self._seen = None
                return True
            now = time.monotonic()
            if self._seen is None or self._seen[0] != record.version:
                self._seen = (record.version, now)
                return False
            if now - self._seen[1] < self._lease:
                return False
            await store.put_record(NAMESPACE, self._key, data, record.version)  # lapsed
            self._seen = None
            return True
        except VersionConflict:
            return False  # someone else took or released it meanwhile
        except StateError as exc:
            log.warning("the team's merge lock cannot be read (%s)", exc)
            return False

    def _data(self, token: str) -> dict[str, object]:
        return {
            "holder": self._holder,
            "token": token,
            "since": utcnow().isoformat(),
            "lease": self._lease,
        }

    async def _acquire(self, token: str) -> bool:
        store, started = self._store, time.monotonic()
        seen: tuple[int, float] | None = None  # the holder's version and when we first saw it
        first: float | None = None  # when a holder was first seen: the wait counts from there
        pause = _POLL_FIRST
        data = self._data(token)
        try:
            # Free most of the time: taken by creating the record, nothing read first.
            await store.put_record(NAMESPACE, self._key, data, 0)
            return True
        except VersionConflict:
            pass  # held (or being released): wait for it below
        except StateError as exc:
            log.warning("the team's merge lock cannot be read (%s): landing without it", exc)
            return False
        while True:
            now: float | None = None
            try:
                record = await store.get_record(NAMESPACE, self._key)
                if record is None:
                    await store.put_record(NAMESPACE, self._key, data, 0)
                    return True
                now = time.monotonic()
                first = now if first is None else first
                if seen is None or seen[0] != record.version:
                    seen = (record.version, now)
                elif now - seen[1] >= self._lease:  # its holder stopped renewing: lapsed
                    await store.put_record(NAMESPACE, self._key, data, record.version)
                    return True
            except VersionConflict:
                pass  # someone else took or released it: look again
            except StateError as exc:
                log.warning("the team's merge lock cannot be read (%s): landing without it", exc)
                return False
            # The same reading as the lapse above: a holder unchanged for a lease was taken over
            # there, before this could give up on it.
            waited = now - first if now is not None and first is not None else None
            if waited is None:
                waited = time.monotonic() - started
            if waited >= self._lease:
                return False
            await anyio.sleep(pause * (0.5 + secrets.randbelow(1000) / 1000))
            pause = min(_POLL_MAX, pause * 2)

    async def _release(self, token: str) -> None:
        with contextlib.suppress(StateError):  # taken over (VersionConflict) or unreachable
            record = await self._store.get_record(NAMESPACE, self._key)
            if record is not None and record.data.get("token") == token:
                await self._store.delete_record(NAMESPACE, self._key, record.version)
