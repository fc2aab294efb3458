"""The session worktrees a manager knows, and the bookkeeping around each one.

Ownership is kept three ways, so it survives the loss of any one: in memory (``known``), in the
state store (namespace ``worktrees``, key = session id) and in the reason git's worktree lock
holds (session, CLI, task). ``busy`` sessions are being made or removed right now; one anyio
lock per session keeps two git operations on one worktree apart.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Sequence
from contextlib import asynccontextmanager, contextmanager
from dataclasses import replace
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.events import Event
from orchestrator.events.worktrees import WorktreeRemoved, WorktreeRescued
from orchestrator.ids import check_id
from orchestrator.models import TaskState, utcnow
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore
from orchestrator.worktrees.listing import list_worktrees
from orchestrator.worktrees.models import RemovalResult, SessionWorktree, WorktreeInfo
from orchestrator.worktrees.ops import Workspace
from orchestrator.worktrees.retire import retire

__all__ = ["NAMESPACE", "SessionBook"]

T = TypeVar("T")

NAMESPACE = "worktrees"
R = TypeVar("R")
log = logging.getLogger(__name__)


class SessionBook:
    def __init__(
        self, store: StateStore | None, workspace: Callable[[], Awaitable[Workspace]]
    ) -> None:
        self.store = store
        self._workspace = workspace
        self.known: dict[str, SessionWorktree] = {}
        self.busy: set[str] = set()  # sessions being created or removed by this manager
        self._locks: dict[str, anyio.Lock] = {}

    @contextmanager
    def making_or_removing(self, session_id: str) -> Iterator[None]:
        """Mark ``session_id`` busy for the duration; ``WorkspaceError`` if it already is."""
        if session_id in self.busy:
            raise WorkspaceError(f"session {session_id!r} is being created or removed")
        self.busy.add(session_id)
        try:
            yield
        finally:
            self.busy.discard(session_id)

    @asynccontextmanager
    async def lock(self, session_id: str) -> AsyncIterator[None]:
        """One git operation on a session's worktree at a time (not reentrant)."""
        lock = self._locks.setdefault(session_id, anyio.Lock())
        try:
            async with lock:
                yield
        finally:
            if not lock.locked() and lock.statistics().tasks_waiting == 0:
                self._locks.pop(session_id, None)

    # -- finding --------------------------------------------------------------------------

    async def get(self, session: SessionWorktree | str) -> SessionWorktree:
        """The session's worktree, from memory, the store, or git's lock reason."""
        if isinstance(session, SessionWorktree):
            return session
        sid = check_id(session, "session id")
        if sid in self.known:
            return self.known[sid]
        if self.store is not None:
            record = await self.store.get_record(NAMESPACE, sid)
            if record is not None:
                return SessionWorktree.model_validate(record.data)
        ws = await self._workspace()
        for info in await self.list_worktrees():
            if info.kind == "session" and info.session_id == sid and info.branch:
                return SessionWorktree(
                    session_id=sid,
                    cli=info.cli or "unknown",
                    task_id=info.task_id or "unknown",
                    path=info.path,
                    branch=info.branch,
                    base_commit=(await ws.git.run("merge-base", ws.base_ref, info.branch)).out,
                    created_at=utcnow(),
                )
        raise WorkspaceError(f"no worktree is known for session {sid!r} in {ws.layout.root}")

    async def all(self) -> dict[str, SessionWorktree]:
        """Every session this manager or the store knows a worktree for."""
        found = dict(self.known)
        if self.store is not None:
            for record in await self.store.list_records(NAMESPACE):
                try:
                    found.setdefault(record.key, SessionWorktree.model_validate(record.data))
                except ValueError as exc:
                    log.warning("worktree record %s is not readable: %s", record.key, exc)
        return found

    async def list_worktrees(self) -> list[WorktreeInfo]:
        """Git's worktrees (ours marked, with their owners) plus recorded ones git lacks."""
        ws = await self._workspace()
        return await list_worktrees(ws.git, ws.layout, await self.all())

    # -- records and events ---------------------------------------------------------------

    async def put(self, session: SessionWorktree, expected_version: int | None) -> None:
        if self.store is not None:
            await self.store.put_record(
                NAMESPACE, session.session_id, session.model_dump(mode="json"), expected_version
            )

    async def put_made(
        self,
        session_id: str,
        make: Callable[[], SessionWorktree],
        then: Callable[[SessionWorktree], T],
        expected_version: int | None,
    ) -> tuple[SessionWorktree, T]:
        """The session ``make`` (blocking) makes, its record (keyed ``session_id``), then
        ``then`` (blocking) on the session once its record is written, in the same store call
        (``put_made_record_then``); without a store, ``make`` and ``then`` in a worker
        thread."""
        if self.store is None:

            def both() -> tuple[SessionWorktree, T]:
                session = make()
                return session, then(session)

            return await anyio.to_thread.run_sync(both)

        def made() -> tuple[dict[str, Any], SessionWorktree]:
            session = make()
            if session.session_id != session_id:
                raise WorkspaceError(f"session {session.session_id!r} made for {session_id!r}")
            return session.model_dump(mode="json"), session

        _, session, after = await self.store.put_made_record_then(
            NAMESPACE, session_id, made, then, expected_version
        )
        return session, after

    async def retire(
        self,
        session: SessionWorktree,
        *,
        force: bool,
        pool_it: bool,
        forget: bool = True,
        also: Sequence[Deletion] = (),
        first: ReleaseFirst | None = None,
    ) -> RemovalResult:
        """``ops.retire`` plus the bookkeeping; the caller holds the session's lock. ``also``:
        other records deleted with the worktree's (``forget``), after the removal. ``first``:
        a claim's release made before anything else, in the removal's own store call when it
        makes one (``release_claim_then_delete_made``), else in a call of its own first."""
        sid = session.session_id
        store = self.store
        if (also or first is not None) and store is None:
            raise WorkspaceError(f"no store to delete the records of session {sid!r} from")
        gone = [*([Deletion(NAMESPACE, sid)] if forget else []), *also]
        forgot = False  # its record deleted in the removal's own call (``retire``'s fast path)
        released: list[ReleaseFirst] = [] if first is None else [first]  # until it is

        def told(state: TaskState) -> None:
            given = released.pop()
            given.told(state)

        async def with_record(blocking: Callable[[], R], removed: Callable[[R], bool]) -> R:
            nonlocal forgot
            assert store is not None

            def make() -> tuple[list[Deletion], R]:
                out = blocking()  # the worktree removed first: a crash keeps the record
                return (gone if removed(out) else []), out

            if released:
                release = replace(released[0], told=told)
                _, found, out = await store.release_claim_then_delete_made(release, make)
            else:
                found, out = await store.delete_made_records(make)
            forgot = bool(found)
            return out

        async def release_first() -> None:
            if released:
                assert store is not None
                given = released[0]
                state = await store.release_claim(
                    given.task_id, given.token, given.status, given.updates
                )
                told(state)
                given.then()

        ws = await self._workspace()
        carried = with_record if (gone or released) and store is not None else None
        result = await retire(
            ws, session, force=force, pool_it=pool_it, forget=carried, before=release_first
        )
        if gone and store is not None and not forgot:
            await store.delete_records(gone)
        if forget:
            self.known.pop(sid, None)
        task_id = session.task_id
        if result.rescue_commit is not None:
            rescued = WorktreeRescued(task_id=task_id, session_id=sid, commit=result.rescue_commit)
            await self.emit(rescued)
        await self.emit(WorktreeRemoved(task_id=task_id, **result.model_dump(mode="json")))
        return result

    async def emit(self, event: Event) -> None:
        if self.store is None:
            return
        try:
            await self.store.emit(event)
        except Exception as exc:  # the audit trail must not undo work that already happened
            log.warning("could not record event %s: %s", event.type, exc)
