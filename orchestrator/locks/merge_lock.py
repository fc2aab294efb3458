"""Layer 3 of the locks: one merge into the base branch at a time.

Contract:

- In one process, holders are serialized by a one-slot anyio semaphore (first come, first
  served). It is a semaphore rather than an ``anyio.Lock`` because the lock belongs to a
  *session*, not to a task: ``release_all_session_locks`` may run in the reconcile loop, another
  task than the one that acquired.
- Across processes on this machine, the holder also holds the OS lock on
  ``<project>/.council/locks/merge.lock``; the kernel drops it if the holder dies.
- The holder is recorded as the ``merge-lock/merge`` keyed record (session, fencing token,
  since, process) so other processes can name who merges; the token grows with every grant.
- Only the session holding the lock releases it; a release by anyone else returns False and
  changes nothing. A session asking again while it holds the lock gets ``LockError``.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import LockError, LockTimeout, VersionConflict
from orchestrator.events import Event
from orchestrator.events.locks import LockAcquired, LockReleased
from orchestrator.filelock import FileLock
from orchestrator.ids import check_id
from orchestrator.locks.registry import Records
from orchestrator.models import utcnow
from orchestrator.process import procid

__all__ = ["MERGE_OWNER", "MergeGrant", "MergeLock"]

MERGE_OWNER = "merge-lock"
_KEY = "merge"

Emit = Callable[[Event], Awaitable[None]]


class _Held(Exception):
    """The OS lock was held by another process at the first try (nothing was written)."""


@dataclass(frozen=True, slots=True)
class MergeGrant:
    """The right to merge into the base branch, held by ``session`` since ``since``."""

    session: str
    token: int
    since: datetime


class MergeLock:
    def __init__(self, path: Path, records: Records, emit: Emit, root: Path) -> None:
        self.path = path
        self._root = root  # the lock file is reached from here without following a link
        self._records = records
        self._emit = emit
        self._slot = anyio.Semaphore(1)
        self._held: tuple[MergeGrant, FileLock, int] | None = None
        # Sessions whose grant this lock let go of, its record deleted (or another holder's
        # since): no record can name them as merger now but a later grant's, which holds
        # the lock while it lives (``clear_stale`` then has nothing to look for).
        self._let_go: set[str] = set()

    @property
    def holder(self) -> MergeGrant | None:
        """The grant held through this manager, if any."""
        return self._held[0] if self._held else None

    async def acquire(self, session: str, timeout: float | None = None) -> MergeGrant:
        """Wait for the merge lock (``timeout=None``: as long as it takes)."""
        check_id(session, "session id")
        self._let_go.discard(session)  # a grant of its own may name it again from now on
        if self._held is not None and self._held[0].session == session:
            raise LockError(f"session {session} already holds the merge lock")
        limit = math.inf if timeout is None else timeout
        started = time.monotonic()
        try:
            with anyio.fail_after(timeout):
                await self._slot.acquire()
        except TimeoutError:
            raise LockTimeout(self.path, limit, self._holder_name()) from None
        try:
            # The usual case, the lock free: its try, the token and the record naming the
            # holder in one worker-thread call (the record's write), on the floor read just
            # before (as the file locks take theirs, ``manager``).
            held = await self._take_recorded(session, await self._floor())
            if held is None:  # held by another process: waited for, the floor read again
                lock = await self._os_lock(limit - (time.monotonic() - started), limit)
                try:
                    with anyio.CancelScope(shield=True):
                        grant, version = await self._record(session, lock, None)
                except BaseException:
                    lock.release()
                    raise
                held = (grant, lock, version)
            grant = held[0]
            self._held = held
        except BaseException:
            self._slot.release()
            raise
        await self._emit(LockAcquired(lock="merge", session=session, token=grant.token))
        return grant

    async def release(self, session: str) -> bool:
        """Let go of the merge lock if ``session`` holds it here; False otherwise."""
        held = self._held
        if held is None or held[0].session != session:
            return False
        grant, lock, version = held
        self._held = None
        with anyio.CancelScope(shield=True):
            try:
                with contextlib.suppress(VersionConflict):  # someone reclaimed the record
                    await self._records.delete_record(MERGE_OWNER, _KEY, version, durable=False)
                self._let_go.add(session)
            finally:
                lock.release()
                self._slot.release()
        await self._emit(LockReleased(lock="merge", session=session, token=grant.token))
        return True

    async def clear_stale(self, session: str) -> bool:
        """Remove a record naming ``session`` as merger when no process holds the lock (its
        holder died); True when one was removed. A session whose last grant this lock let go
        of itself is not looked for (no read): only a grant of its own, here or in a process
        that died holding it, writes a record naming it, and none came after its release here
        (a session ends with this call; it does not merge again)."""
        if session in self._let_go:
            self._let_go.discard(session)
            return False
        if self._held is not None:
            return False  # this process holds the lock: no record is a dead holder's now
        record = await self._records.get_record(MERGE_OWNER, _KEY)
        if record is None or record.data.get("session") != session or self._held is not None:
            return False
        probe = await anyio.to_thread.run_sync(self._try_os_lock)
        if probe is None:
            return False
        try:
            with contextlib.suppress(VersionConflict):
                return await self._records.delete_record(MERGE_OWNER, _KEY, record.version)
            return False
        finally:
            probe.release()

    async def _os_lock(self, remaining: float, limit: float) -> FileLock:
        try:
            return await filelock.acquire(self.path, timeout=max(remaining, 0.0), root=self._root)
        except LockTimeout:
            record = await self._records.get_record(MERGE_OWNER, _KEY)
            owner = record.data.get("session") if record is not None else None
            raise LockTimeout(self.path, limit, owner if isinstance(owner, str) else None) from None

    async def _floor(self) -> int:
        """The token of the record naming the last merger (0 when none): every new token is
        above it, should the lock file's own counter have been lost."""
        current = await self._records.get_record(MERGE_OWNER, _KEY)
        previous = current.data.get("token", 0) if current is not None else 0
        return previous if isinstance(previous, int) else 0

    async def _take_recorded(
        self, session: str, floor: int
    ) -> tuple[MergeGrant, FileLock, int] | None:
        """The OS lock now, its counter bumped above ``floor`` and the record naming the
        holder written, in the record write's own worker-thread call (``put_made_record``):
        the lock is taken there, before the write, and the write is made only if it was.
        None (nothing written) while another process holds the lock."""
        taken: list[FileLock] = []

        def make() -> tuple[dict[str, Any], MergeGrant]:
            lock = self._try_os_lock()
            if lock is None:
                raise _Held
            token = lock.drawn_token(floor)  # (the lock let go if this fails)
            taken.append(lock)
            grant = MergeGrant(session, token, utcnow())
            return self._owner(grant), grant

        try:
            # Shielded, as the record's write after a wait is: the lock taken in ``make`` is
            # either named by its record and held, or let go (below).
            with anyio.CancelScope(shield=True):
                record, grant = await self._records.put_made_record(
                    MERGE_OWNER, _KEY, make, durable=False
                )
        except _Held:
            return None
        except BaseException:
            for lock in taken:
                lock.release()
            raise
        return grant, taken[0], record.version

    @staticmethod
    def _owner(grant: MergeGrant) -> dict[str, Any]:
        """The record naming ``grant``'s holder (this process)."""
        data = {"session": grant.session, "token": grant.token, "since": grant.since.isoformat()}
        return {**data, **procid.current().as_dict()}

    async def _record(
        self, session: str, lock: FileLock, token: int | None
    ) -> tuple[MergeGrant, int]:
        # We hold the OS lock, so any record still there is a dead holder's: overwrite it.
        if token is None:  # the lock was waited for: its token drawn now
            token = await anyio.to_thread.run_sync(lock.bump_counter, await self._floor())
        grant = MergeGrant(session, token, utcnow())
        # Not fsynced, like the file-lock owners: it names a live holder of the OS lock,
        # which a machine crash makes moot (the token lives in the lock file itself).
        record = await self._records.put_record(
            MERGE_OWNER, _KEY, self._owner(grant), durable=False
        )
        return grant, record.version

    def _try_os_lock(self) -> FileLock | None:
        return filelock.try_acquire(self.path, root=self._root)

    def _holder_name(self) -> str | None:
        return self._held[0].session if self._held is not None else None
