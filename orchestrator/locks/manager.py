"""Locks: the three protection layers of DESIGN.md behind one ``LockManager``.

Contract:

- Paths are normalized first (``orchestrator.safety.paths``): ``./a//b``, ``a/b`` and ``<repo>/a/b``
  are one lock; a path resolving outside the repository raises ``PathEscapeError``. Session ids
  must be safe ids.
- **Layer 2 before layer 1.** ``acquire_file_lock`` reads the ownership registry
  (``locks.registry``) before it tries the OS lock. A path the same session already holds is a
  ``LockError`` at once (never a wait on itself).
- **Layer 1.** The OS lock is ``<project>/.council/locks/files/<sha256 of path>.lock``, tried
  non-blocking; waiting is async exponential backoff up to ``timeout``, then ``LockTimeout``
  naming the path and the owning session. The kernel drops it when its holder dies, so a
  registry entry whose OS lock is free is stale: the next acquirer takes it over (its grant
  names the dead session in the ``lock.acquired`` event as ``reclaimed_from``).
- **Fencing.** Each grant carries a token larger than every earlier grant's for that path
  (a counter in the lock file, bumped only by the OS lock's holder, never below the token of a
  stale entry being taken over). Releases go through the manager holding the OS lock, check the
  registry entry's version before deleting it, and reject a stale token with ``StaleClaim``,
  so nobody releases a lock someone else holds now.
- **Deadlocks.** A session that has to wait records the edge (it → path → owner) in the
  persisted wait-for graph, then looks for a cycle through itself; if there is one its wait is
  refused with ``DeadlockError`` naming the cycle, and the waits already in the graph go on
  (``locks.waiting``). A session waits for one lock at a time.
- The owner entries are written, told alive or dead and swept by ``locks.owner_entries``.
- **Layer 3** is ``merge_lock`` (see ``orchestrator.locks.merge_lock``).
- Without a ``store`` the registry lives in this manager's memory: OS locks still exclude other
  processes, but owners, waits and deadlocks are only known to this manager. With a store every
  orchestrator process sharing it sees them, and lock events are emitted through it.

Event loop: waiting is always async, and the event loop never opens, locks or reads a file:
each try of an OS lock (an ``lstat`` per path component, ``open`` + ``flock(LOCK_NB)``) runs in
a worker thread, as do the store's reads and writes. A hop costs more than the lock itself on a
small machine, but a loop that waits on a slow disk stalls every session at once.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import time
from collections.abc import AsyncIterator, Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from types import TracebackType

import anyio
import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import LockError, StaleClaim
from orchestrator.events import Event
from orchestrator.events.locks import LockAcquired, LockReleased
from orchestrator.filelock import FileLock
from orchestrator.ids import check_id
from orchestrator.locks import owner_entries
from orchestrator.locks.merge_lock import MergeGrant, MergeHold, MergeLock
from orchestrator.locks.registry import FILE_OWNERS, MemoryRecords, Owner, OwnerRegistry, Records
from orchestrator.locks.waiting import Blocked, wait_for_lock
from orchestrator.models import utcnow
from orchestrator.safety.paths import RepoPaths, StrPath
from orchestrator.state.protocol import StateStore

__all__ = ["FileLockGrant", "LockManager", "MergeGrant"]

_KEY_CACHE_LIMIT = 4096
_NO_SHIELD = contextlib.nullcontext()


@dataclass(frozen=True, slots=True)
class FileLockGrant:
    """``session`` holds the repository path ``path`` (normalized) under fencing ``token``."""

    path: str
    session: str
    token: int
    since: datetime


@dataclass(slots=True)
class _Held:
    grant: FileLockGrant
    lock: FileLock
    version: int  # of the registry entry we wrote
    spellings: list[str]  # the paths as callers gave them


class LockManager:
    """File locks, ownership registry and merge lock of one project (see module docstring)."""

    def __init__(self, project_dir: StrPath, *, store: StateStore | None = None) -> None:
        self.project_dir = Path(project_dir)
        self.paths = RepoPaths(self.project_dir)
        locks_dir = self.project_dir / ".council" / "locks"
        self._files_dir = locks_dir / "files"
        self._store = store
        # Without a store nobody else can read owner entries, so the table of what this
        # manager holds *is* the registry and no copy of it is kept; waits still go through
        # records, because the wait-for graph is what deadlock detection reads.
        self._shared = store is not None
        records: Records = store if store is not None else MemoryRecords()
        self.registry = OwnerRegistry(records)
        self._merge = MergeLock(locks_dir / "merge.lock", records, self._emit, self.project_dir)
        self._held: dict[str, _Held] = {}  # registry key → what this manager holds
        self._spelled: dict[tuple[str, str], str] = {}  # (session, path as given) → held key
        self._waiting: dict[str, str] = {}  # session → path it waits for here
        self._taking: dict[str, anyio.Lock] = {}  # session → one ``acquire_missing`` at a time
        self._keys: dict[str, tuple[str, Path]] = {}  # normalized path → (key, lock file)
        self._sessions: set[str] = set()  # ids already checked
        # Sessions this process drew just now that have taken or waited for no file lock here
        # (``fresh``): nothing of them can be in the store for their end to clear.
        self._fresh: set[str] = set()

    async def __aenter__(self) -> LockManager:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        """Release everything this manager holds, for every session."""
        sessions = {h.grant.session for h in self._held.values()}
        if (merger := self._merge.holder) is not None:
            sessions.add(merger.session)
        for session in sorted(sessions):
            await self.release_all_session_locks(session)

    # -- layer 1 + 2: file locks --------------------------------------------------------------

    async def acquire_file_lock(
        self, session: str, path: StrPath, timeout: float = 10.0
    ) -> FileLockGrant:
        """Take ``path`` for ``session``, waiting up to ``timeout`` seconds."""
        self._check_session(session)
        rel = self.paths.normalize(path)
        key, lock_path = self._key(rel)
        held = self._held.get(key)
        if held is not None and held.grant.session == session:
            raise LockError(
                f"session {session} already holds {rel!r} (token {held.grant.token}); "
                "a session takes a path once"
            )
        if session in self._waiting:
            raise LockError(
                f"session {session} is already waiting for {self._waiting[session]!r}; "
                "a session waits for one lock at a time"
            )
        outcome = await self._try_take(session, rel, key, lock_path)
        if isinstance(outcome, Blocked):
            outcome = await wait_for_lock(
                session,
                rel,
                timeout,
                outcome,
                lambda: self._try_take(session, rel, key, lock_path),
                self._waiting,
                self.registry,
                self._emit,
            )
        if isinstance(path, str):
            # A release spelled like the acquire finds its lock without resolving the path
            # again (its resolution may even have changed since: the grant is what we release).
            self._spelled[session, path] = key
            self._held[key].spellings.append(path)
        return outcome

    async def acquire_file_locks(
        self, session: str, paths: Iterable[StrPath], timeout: float = 10.0
    ) -> list[FileLockGrant]:
        """Take several paths, all or none, in one global order (sorted normalized paths) so
        that two sessions asking for overlapping sets never deadlock on each other."""
        self._check_session(session)
        ordered = sorted({self.paths.normalize(p) for p in paths})
        deadline = time.monotonic() + timeout
        grants: list[FileLockGrant] = []
        try:
            for rel in ordered:
                remaining = max(deadline - time.monotonic(), 0.0)
                grants.append(await self.acquire_file_lock(session, rel, remaining))
        except BaseException:
            with anyio.CancelScope(shield=True):
                for grant in grants:
                    await self.release_file_lock(session, grant.path)
            raise
        return grants

    async def acquire_missing(
        self, session: str, paths: Iterable[StrPath], timeout: float = 10.0
    ) -> list[str]:
        """Take those of ``paths`` that ``session`` does not hold yet (all or none, as
        ``acquire_file_locks``), one caller at a time per session in this process: several
        attempts sharing one owner (a council task's candidates) never find a path held by
        their own owner, nor take it twice. The paths taken now, normalized."""
        self._check_session(session)
        taking = self._taking.setdefault(session, anyio.Lock())
        try:
            async with taking:
                held = {grant.path for grant in self.held(session)}
                wanted = sorted({self.paths.normalize(p) for p in paths} - held)
                if wanted:
                    await self.acquire_file_locks(session, wanted, timeout=timeout)
                return wanted
        finally:
            # Nobody waits for it: gone with its session's last caller (a run of many tasks
            # keeps none per task that has ended).
            if not taking.locked() and not taking.statistics().tasks_waiting:
                self._taking.pop(session, None)

    async def release_file_lock(
        self, session: str, path: StrPath, *, token: int | None = None
    ) -> bool:
        """Release ``path`` if ``session`` holds it through this manager; False otherwise.

        With ``token``, a token that is not the current grant's raises ``StaleClaim`` (the
        caller's right ended and someone may hold the path now); nothing is released then.
        """
        self._check_session(session)
        key = self._spelled.get((session, path)) if isinstance(path, str) else None
        if key is None:
            key = self._key(self.paths.normalize(path))[0]
        held = self._held.get(key)
        if (
            held is None
            or held.grant.session != session
            or (token is not None and token != held.grant.token)
        ):
            if token is not None:
                current = held.grant.token if held else await self._registered_token(key)
                raise StaleClaim(f"{FILE_OWNERS}/{os.fspath(path)}", token, current)
            return False
        await self._release(key, held)
        return True

    async def owner_of(self, path: StrPath) -> FileLockGrant | None:
        """Who holds ``path`` now, as far as any process sharing the registry can tell.

        A registry entry whose OS lock is free belongs to a dead holder and is not reported.
        """
        rel = self.paths.normalize(path)
        key, lock_path = self._key(rel)
        held = self._held.get(key)
        if held is not None:
            return held.grant
        current = await self.registry.owner(key) if self._shared else None
        if current is None:
            return None
        probe = await self._try_os_lock(lock_path)
        if probe is not None:
            probe.release()
            return None
        return FileLockGrant(current.path, current.session, current.token, current.since)

    def held(self, session: str) -> list[FileLockGrant]:
        """The file locks ``session`` holds through this manager, by path."""
        grants = (h.grant for h in self._held.values() if h.grant.session == session)
        return sorted(grants, key=lambda g: g.path)

    def fresh(self, session: str) -> None:
        """``session`` is an id this process drew just now (a new attempt's session): no
        other process knows it yet, so nothing of it is in the store but what this manager
        writes. While it takes and waits for no file lock here, its end
        (``release_all_session_locks``) looks for no index entry or wait a dead process left
        for it: none can be; nor for a merge record naming it, whatever it did with the merge
        lock (every grant of it was this process's: held, or let go with its record)."""
        self._check_session(session)
        if len(self._fresh) >= _KEY_CACHE_LIMIT:
            self._fresh.clear()  # sessions never ended here: looked for as any other
        self._fresh.add(session)

    async def release_all_session_locks(self, session: str) -> int:
        """Release every file lock and the merge lock of ``session``; how many were released.

        Besides what this manager holds, registry entries a dead process left for ``session``
        (listed in its index, OS lock free) are removed and counted too (not for a ``fresh``
        session that took no file lock here: none can be).
        """
        self._check_session(session)
        untouched = session in self._fresh
        self._fresh.discard(session)
        released = 0
        for key, held in list(self._held.items()):
            if held.grant.session == session:
                await self._release(key, held)
                released += 1
        if not untouched:
            released += await self._clear_stale_entries(session)
        if await self._merge.release(session) or (
            not untouched and await self._merge.clear_stale(session)
        ):
            released += 1
        if not untouched:
            await self.registry.clear_wait(session)
        self.registry.forget(session)  # read again should the session ever take a lock
        return released

    # -- layer 3: merge lock ------------------------------------------------------------------

    async def acquire_merge_lock(self, session: str, timeout: float | None = None) -> MergeGrant:
        """Wait to be the one session merging into the base (``timeout=None``: no limit)."""
        return await self._merge.acquire(session, timeout)

    async def release_merge_lock(self, session: str) -> bool:
        """Release the merge lock if ``session`` holds it; False (and no change) otherwise."""
        return await self._merge.release(session)

    @contextlib.asynccontextmanager
    async def merge_lock(
        self, session: str, timeout: float | None = None
    ) -> AsyncIterator[MergeGrant]:
        """``async with locks.merge_lock(session) as grant:`` merge; released on the way out,
        also when the body fails or is cancelled."""
        grant = await self._merge.acquire(session, timeout)
        try:
            yield grant
        finally:
            await self._merge.release(session)

    @contextlib.asynccontextmanager
    async def merge_hold(self, session: str) -> AsyncIterator[MergeHold]:
        """``merge_lock`` whose taking rides in the first blocking work run under it
        (``MergeHold.run_taking``: the merge queue's first attempt); let go on the way out."""
        await self._merge.wait_slot(session)
        hold = MergeHold(self._merge, session)
        try:
            yield hold
        finally:
            await hold.end()

    @property
    def merge_holder(self) -> MergeGrant | None:
        """The merge grant held through this manager, if any."""
        return self._merge.holder

    # -- internals ----------------------------------------------------------------------------

    def _check_session(self, session: str) -> None:
        if session not in self._sessions:  # the regex costs as much as a syscall: once per id
            check_id(session, "session id")
            if len(self._sessions) >= _KEY_CACHE_LIMIT:
                self._sessions.clear()
            self._sessions.add(session)

    def _key(self, rel: str) -> tuple[str, Path]:
        found = self._keys.get(rel)
        if found is None:
            if len(self._keys) >= _KEY_CACHE_LIMIT:
                self._keys.clear()
            key = hashlib.sha256(rel.encode()).hexdigest()
            found = self._keys[rel] = (key, self._files_dir / f"{key}.lock")
        return found

    async def _try_take(
        self, session: str, rel: str, key: str, lock_path: Path
    ) -> FileLockGrant | Blocked:
        self._fresh.discard(session)  # it may hold or wait for a file from now on
        held = self._held.get(key)
        if held is not None:
            return Blocked(held.grant.session)
        current = await self.registry.owner(key) if self._shared else None
        # The OS lock and the next fencing token in one worker-thread call: a token only has
        # to be larger than every earlier one, so drawing it before the registry writes is safe.
        floor = current.token if current else 0
        taken = await anyio.to_thread.run_sync(self._take_os_lock_sync, lock_path, floor)
        if taken is None:
            return Blocked(await owner_entries.live_session(current))
        lock, token = taken
        # The OS lock is ours, so the path is free or its entry is a dead holder's.
        with self._critical():
            grant = await self._claim(session, rel, key, lock, token, current)
        return grant

    def _take_os_lock_sync(self, lock_path: Path, floor: int) -> tuple[FileLock, int] | None:
        lock = filelock.try_acquire(lock_path, root=self.project_dir)
        if lock is None:
            return None
        return lock, lock.drawn_token(floor)

    async def _claim(
        self,
        session: str,
        rel: str,
        key: str,
        lock: FileLock,
        token: int,
        current: Owner | None,
    ) -> FileLockGrant:
        try:
            if self._shared:
                token, since, version = await owner_entries.register(
                    self.registry, session, rel, key, lock, token, current
                )
                grant = FileLockGrant(rel, session, token, since)
            else:
                grant, version = FileLockGrant(rel, session, token, utcnow()), 0
        except BaseException:
            lock.release()
            raise
        self._held[key] = _Held(grant, lock, version, [])
        if self._shared:
            reclaimed = {"reclaimed_from": current.session} if current is not None else {}
            acquired = LockAcquired(
                lock="file", session=session, path=rel, token=grant.token, **reclaimed
            )
            await self._emit(acquired)
        return grant

    async def _release(self, key: str, held: _Held) -> None:
        del self._held[key]
        grant = held.grant
        for spelling in held.spellings:
            self._spelled.pop((grant.session, spelling), None)
        if not self._shared:
            held.lock.release()
            return
        with anyio.CancelScope(shield=True):
            try:
                # Entry first, OS lock last: a live entry always has its OS lock held.
                await self.registry.drop(key, held.version)
                await self.registry.index_update(grant.session, remove=[key])
            finally:
                held.lock.release()
        await self._emit(
            LockReleased(lock="file", session=grant.session, path=grant.path, token=grant.token)
        )

    async def _registered_token(self, key: str) -> int | None:
        current = await self.registry.owner(key) if self._shared else None
        return current.token if current is not None else None

    async def _clear_stale_entries(self, session: str) -> int:
        """Drop the entries a dead process of ``session`` left; the index hints go too."""
        if self._store is None:
            return 0  # the memory registry only holds what this manager holds
        return await owner_entries.clear_stale(
            self.registry, session, self._files_dir, self._try_os_lock, self._emit
        )

    async def _try_os_lock(self, lock_path: Path) -> FileLock | None:
        """The path's OS lock now, or None while another holder has it. In a worker thread:
        opening the lock file walks its directories, which the event loop must not wait on."""
        return await anyio.to_thread.run_sync(self._try_os_lock_sync, lock_path)

    def _try_os_lock_sync(self, lock_path: Path) -> FileLock | None:
        return filelock.try_acquire(lock_path, root=self.project_dir)

    def _critical(self) -> contextlib.AbstractContextManager[object]:
        """Shield a lock hand-over from cancellation, which would split the OS lock from its
        registry entry. Memory-registry calls never suspend, so they need no shield."""
        return anyio.CancelScope(shield=True) if self._store is not None else _NO_SHIELD

    async def _emit(self, event: Event) -> None:
        if self._store is not None:
            await self._store.emit(event)
