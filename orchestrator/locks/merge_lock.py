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
- A holder's last work may let go of the lock in its own call (``MergeHold.take_in`` with
  ``last``): the record deleted in the record write's worker-thread call once the work
  answered, the OS lock let go just after it; the in-process turn is kept until ``release``
  (the hold's end), so this process's next merge still waits for the end of this one.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Generic, TypeVar, cast

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

__all__ = ["MERGE_OWNER", "MergeGrant", "MergeHold", "MergeLock"]

MERGE_OWNER = "merge-lock"
_KEY = "merge"

Emit = Callable[[Event], Awaitable[None]]
T = TypeVar("T")


class _Held(Exception):
    """The OS lock was held by another process at the first try (nothing was written)."""


@dataclass(frozen=True, slots=True)
class _Ran(Generic[T]):
    """What a blocking ``work`` gave, or the error it raised, carried out of its call."""

    result: T | None = None
    error: Exception | None = None

    @classmethod
    def of(cls, work: Callable[[], T]) -> _Ran[T]:
        try:
            return cls(work())
        except Exception as exc:
            return cls(error=exc)

    def value(self) -> T:
        if self.error is not None:
            raise self.error
        return cast(T, self.result)


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
        # A grant whose record and OS lock went in its last work's call (``take_ran`` with
        # ``last``), its turn still held until ``release``.
        self._spent: MergeGrant | None = None
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
        started = time.monotonic()
        await self.wait_slot(session, timeout)
        grant, _, _ = await self._take(session, None, timeout, started)
        return grant

    async def wait_slot(self, session: str, timeout: float | None = None) -> None:
        """This process's turn (first come, first served), the OS lock not taken yet: a
        ``take_then`` follows, or ``let_slot_go``."""
        check_id(session, "session id")
        self._let_go.discard(session)  # a grant of its own may name it again from now on
        if self._holds(session):
            raise LockError(f"session {session} already holds the merge lock")
        limit = math.inf if timeout is None else timeout
        try:
            with anyio.fail_after(timeout):
                await self._slot.acquire()
        except TimeoutError:
            raise LockTimeout(self.path, limit, self._holder_name()) from None

    def let_slot_go(self) -> None:
        """The turn ``wait_slot`` gave, given back with the lock never taken."""
        self._slot.release()

    async def take_then(self, session: str, work: Callable[[], T]) -> T:
        """The turn held (``wait_slot``): the OS lock, its token, the record naming the holder,
        then ``work`` (blocking), what it gives or raises its own. The lock free, all in the
        record write's one worker-thread call (``put_made_record_then``: the work right after
        the write); held by another process, waited for, then the work in a call of its own.
        The turn is given back if the lock is not taken; once it is, a failing ``work``
        leaves it held (``release`` lets it go)."""
        _, ran, _ = await self._take(session, work)
        assert ran is not None
        return ran.value()

    async def take_ran(
        self, session: str, work: Callable[[], T], last: Callable[[T], bool] | None = None
    ) -> tuple[MergeGrant, _Ran[T] | None, bool]:
        """``take_then``'s taking, the work run only in the taking's own call: its outcome
        there, None when the lock was waited for (taken now, the work not run). ``last``:
        when it says of the work's answer that nothing more is done under the lock, the
        record is deleted in that same call and the OS lock let go after it (True last:
        let go; the turn is kept until ``release``); a work that raised keeps the lock."""
        return await self._take(session, work, after_wait=False, last=last)

    async def _take(
        self,
        session: str,
        work: Callable[[], T] | None,
        timeout: float | None = None,
        started: float | None = None,
        *,
        after_wait: bool = True,
        last: Callable[[T], bool] | None = None,
    ) -> tuple[MergeGrant, _Ran[T] | None, bool]:
        limit = math.inf if timeout is None else timeout
        started = time.monotonic() if started is None else started
        ran: _Ran[T] | None = None
        let_go = False
        try:
            # The usual case, the lock free: its try, the token and the record naming the
            # holder in one worker-thread call (the record's write), on the floor read just
            # before (as the file locks take theirs, ``manager``).
            taken = await self._take_recorded(session, await self._floor(), work, last)
            if taken is None:  # held by another process: waited for, the floor read again
                lock = await self._os_lock(limit - (time.monotonic() - started), limit)
                try:
                    with anyio.CancelScope(shield=True):
                        grant, version = await self._record(session, lock, None)
                except BaseException:
                    lock.release()
                    raise
                held = (grant, lock, version)
            else:
                held, ran, let_go = taken
            if let_go:  # its record went in the work's call: the OS lock goes now
                held[1].release()
                self._spent = held[0]
                self._let_go.add(session)
            else:
                self._held = held
        except BaseException:
            self._slot.release()
            raise
        grant = held[0]
        await self._emit(LockAcquired(lock="merge", session=session, token=grant.token))
        if work is not None and ran is None and after_wait:
            ran = await anyio.to_thread.run_sync(_Ran.of, work)
        return grant, ran, let_go

    async def release(self, session: str) -> bool:
        """Let go of the merge lock if ``session`` holds it here (or of its turn, the lock let
        go in its last work's call); False otherwise."""
        spent = self._spent
        if spent is not None and spent.session == session:
            self._spent = None
            self._slot.release()
            await self._emit(LockReleased(lock="merge", session=session, token=spent.token))
            return True
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
        if self._held is not None or self._spent is not None:
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
        self,
        session: str,
        floor: int,
        work: Callable[[], T] | None,
        last: Callable[[T], bool] | None = None,
    ) -> tuple[tuple[MergeGrant, FileLock, int], _Ran[T] | None, bool] | None:
        """The OS lock now, its counter bumped above ``floor`` and the record naming the
        holder written, in the record write's own worker-thread call (``put_made_record_then``):
        the lock is taken there, before the write, and the write is made only if it was;
        then ``work`` in that call, what it gave or raised kept (None without one), and with
        ``last`` saying so of what it gave, the record deleted again in that call
        (``put_made_record_while``; True last: the caller lets the OS lock go). None
        (nothing written, no work) while another process holds the lock."""
        taken: list[FileLock] = []

        def make() -> tuple[dict[str, Any], MergeGrant]:
            lock = self._try_os_lock()
            if lock is None:
                raise _Held
            token = lock.drawn_token(floor)  # (the lock let go if this fails)
            taken.append(lock)
            grant = MergeGrant(session, token, utcnow())
            return self._owner(grant), grant

        def then(_: MergeGrant) -> _Ran[T] | None:
            return None if work is None else _Ran.of(work)

        def over(ran: _Ran[T] | None) -> bool:
            return (
                last is not None
                and ran is not None
                and ran.error is None
                and last(cast(T, ran.result))
            )

        try:
            # Shielded, as the record's write after a wait is: the lock taken in ``make`` is
            # either named by its record and held, or let go (below).
            with anyio.CancelScope(shield=True):
                if last is None:
                    record, grant, ran = await self._records.put_made_record_then(
                        MERGE_OWNER, _KEY, make, then, durable=False
                    )
                    let_go = False
                else:
                    record, grant, ran, let_go = await self._records.put_made_record_while(
                        MERGE_OWNER, _KEY, make, then, over, durable=False
                    )
        except _Held:
            return None
        except BaseException:
            for lock in taken:
                lock.release()
            raise
        return (grant, taken[0], record.version), ran, let_go

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

    def _holds(self, session: str) -> bool:
        spent = self._spent is not None and self._spent.session == session
        return spent or (self._held is not None and self._held[0].session == session)


class MergeHold:
    """A turn at the merge lock whose taking rides in the first blocking work done under it
    (``run_taking``): the lock's try, its token and its holder's record, then the work, in one
    worker-thread call when the lock is free (``MergeLock.take_then``). Later work runs in a
    call of its own. ``end`` lets go of the lock, or of the turn if it was never taken; a
    work its caller says is the last (``take_in``'s ``last``) lets go of the lock in its own
    call, and ``end`` then gives the turn back."""

    def __init__(self, lock: MergeLock, session: str) -> None:
        self._lock = lock
        self._session = session
        self._state = "turn"  # -> "taken" (-> "spent") -> "over", or "turn" -> "over"

    async def run_taking(self, work: Callable[[], T]) -> T:
        """``work`` (blocking) in a worker thread, the lock taken first if it is not yet."""
        if self._state == "taken":
            return await anyio.to_thread.run_sync(work)
        if self._state != "turn":
            raise LockError(f"session {self._session}: its merge lock's turn is over")
        try:
            return await self._lock.take_then(self._session, work)
        finally:
            held = self._lock.holder
            self._state = "taken" if held is not None and held.session == self._session else "over"

    async def take_in(
        self, work: Callable[[], T], last: Callable[[T], bool] | None = None
    ) -> tuple[bool, T | None]:
        """``run_taking``, but a lock another process held is only waited for and taken:
        ``(False, None)``, the work not run (its caller may first add to it what came while
        it waited); ``(True, what the work gave)`` otherwise. ``last``: when it says so of
        what the work gave in the taking's own call, nothing more is done under the lock, and
        it is let go in that call (``MergeLock.take_ran``); the turn goes at ``end``."""
        if self._state == "taken":
            return True, await anyio.to_thread.run_sync(work)
        if self._state != "turn":
            raise LockError(f"session {self._session}: its merge lock's turn is over")
        let_go = False
        try:
            _, ran, let_go = await self._lock.take_ran(self._session, work, last)
        finally:
            if let_go:
                self._state = "spent"
            else:
                held = self._lock.holder
                mine = held is not None and held.session == self._session
                self._state = "taken" if mine else "over"
        return (False, None) if ran is None else (True, ran.value())

    async def end(self) -> None:
        """Let go of the lock taken, or of the turn; once."""
        state, self._state = self._state, "over"
        if state == "turn":
            self._lock.let_slot_go()
        elif state in ("taken", "spent"):
            await self._lock.release(self._session)
