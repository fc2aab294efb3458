"""Session records in the file backend: a run's tasks, options and status; their metrics are
computed from the tasks when read, never stored; finished sessions past an age are removed
with their tasks and checkpoints."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any

import anyio.to_thread

from orchestrator.errors import RecordNotFound, StateError
from orchestrator.events import Event
from orchestrator.events.state import SessionCreated, SessionRemoved, SessionUpdated
from orchestrator.ids import check_id
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    SessionMetrics,
    SessionRecord,
    TaskState,
    utcnow,
)
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.rules import check_version
from orchestrator.state.file.tasks import FileTasks
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.protocol import TaskInit
from orchestrator.state.record_rules import new_id
from orchestrator.state.session_rules import (
    holding_session,
    refuse_if_held,
    removable_session,
    task_init_fields,
)

__all__ = ["FileSessions"]


_WROTE = 8  # sessions whose last written version is held (a process runs one or two)


class FileSessions:
    def __init__(self, core: FileCore, tasks: FileTasks) -> None:
        self._core = core
        self._tasks = tasks
        # The version of each session this store's ``update_session`` wrote last: the next
        # update's read takes it as it is when the file holds exactly it (``RecordKind.load``'s
        # ``known``), not parsed again (a session of 10,000 tasks: megabytes of options). Only
        # read here, never handed out: a caller holds the same object, as ``update_session``
        # returned it, and one it changed no longer matches the file.
        self._wrote: dict[str, SessionRecord] = {}

    async def create_session(
        self,
        options: Mapping[str, Any],
        tasks: Sequence[TaskInit],
        session_id: str | None = None,
        *,
        listed: Sequence[str] = (),
        metadata: Mapping[str, Any] | None = None,
    ) -> SessionRecord:
        core = self._core
        sid = check_id(session_id or new_id("s"), "session id")
        inits = [task_init_fields(t) for t in tasks]
        task_ids = [str(f["task_id"]) for f in inits]
        if len(set(task_ids)) != len(task_ids):
            raise StateError(f"session {sid!r}: duplicate task ids in {task_ids}")
        known = set(task_ids)
        listing = [*task_ids, *(check_id(t, "task id") for t in listed if t not in known)]
        if await core.read(core.sessions, sid) is not None:
            raise StateError(f"session {sid!r} already exists")
        # Every task is checked before any is taken: a refused session leaves no record of
        # another session pointing at it.
        for task_id in task_ids:
            await self._refuse_if_owned(task_id)
        for fields in inits:
            fresh = TaskState(task_id=str(fields["task_id"]), session_id=sid).model_dump()
            await self._tasks.update_task_state(str(fields["task_id"]), {**fresh, **fields})

        def run(events: list[Event]) -> SessionRecord:
            if load_or_recover(core.sessions, sid, events) is not None:
                raise StateError(f"session {sid!r} already exists")
            members = [t for t in map(core.peek_task, task_ids) if t is not None]
            fields = {
                "options": dict(options),
                "task_ids": listing,
                "metrics": compute_metrics(members),
                **({"metadata": dict(metadata)} if metadata else {}),
            }
            record = core.write_merged(core.sessions, sid, None, fields, {}, events)
            events.append(SessionCreated(session_id=sid))
            return record

        return await core.locked_call(core.sessions, sid, run)

    async def _refuse_if_owned(self, task_id: str) -> None:
        core = self._core
        held = holding_session(await self._tasks.get_task_state(task_id))
        if held is not None:
            refuse_if_held(task_id, await core.read(core.sessions, held))

    async def get_session(self, session_id: str, *, metrics: bool = True) -> SessionRecord | None:
        core = self._core
        session = await core.read(core.sessions, session_id)
        if session is None or not metrics:
            return session
        return await self._with_metrics(session)

    async def _with_metrics(self, session: SessionRecord) -> SessionRecord:
        """``session`` with its metrics computed from its tasks as they are now.

        Metrics are derived, so they are computed when a session is read rather than written
        into the session record on every task change: a task write then costs no session
        lock, no second durable write and no read of every other task of the session.
        """
        core = self._core
        sid = session.session_id

        def compute() -> SessionMetrics:
            members = (core.peek_task(task_id) for task_id in session.task_ids)
            return compute_metrics(t for t in members if t is not None and t.session_id == sid)

        metrics = await anyio.to_thread.run_sync(compute)
        return session.model_copy(update={"metrics": metrics})

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        metrics: bool = True,
    ) -> SessionRecord:
        core = self._core
        check_id(session_id, "session id")
        if "metrics" in updates:
            raise StateError("session metrics are computed by the store, not written")

        def run(events: list[Event]) -> SessionRecord:
            wrote = self._wrote.pop(session_id, None)
            current = load_or_recover(core.sessions, session_id, events, known=wrote)
            if current is None:
                raise RecordNotFound(f"session {session_id!r} does not exist")
            check_version(core.sessions, session_id, current, expected_version)
            new = core.write_merged(core.sessions, session_id, current, updates, {}, events)
            events.append(SessionUpdated(session_id=session_id))
            if len(self._wrote) < _WROTE:
                self._wrote[session_id] = new
            return new

        record = await core.locked_call(core.sessions, session_id, run)
        return await self._with_metrics(record) if metrics else record

    async def get_active_sessions(self) -> list[SessionRecord]:
        core = self._core
        found = await core.read_many(core.sessions, None)
        return [await self._with_metrics(s) for s in found if s.status in ACTIVE_SESSION_STATUSES]

    async def list_sessions(self, *, metrics: bool = True) -> list[SessionRecord]:
        core = self._core
        found = await core.read_many(core.sessions, None)
        ordered = sorted(found, key=lambda s: (s.created_at, s.session_id))
        if not metrics:
            return ordered
        return [await self._with_metrics(s) for s in ordered]

    async def cleanup_old_sessions(self, days: float) -> int:
        core = self._core
        cutoff = utcnow() - timedelta(days=days)
        removed = 0
        for session_id in await anyio.to_thread.run_sync(core.sessions.keys):
            session = await core.read(core.sessions, session_id)
            if session is None or not removable_session(session, cutoff):
                continue
            for task_id in session.task_ids:
                task = await self._tasks.get_task_state(task_id)
                if task is not None and task.session_id == session_id:
                    await core.delete(core.tasks, task_id)
            await anyio.to_thread.run_sync(core.checkpoints.delete_session, session_id)
            await core.delete(core.sessions, session_id)
            await core.emit(SessionRemoved(session_id=session_id))
            removed += 1
        await self._trim_event_archives()
        return removed

    async def _trim_event_archives(self) -> None:
        """Drop the event archives whose events all predate every session still kept (all
        of them when none is): what they tell is of sessions no longer in the store."""
        core = self._core
        kept = [s for s in await self.list_sessions() if s is not None]
        oldest = min((s.created_at for s in kept), default=None)
        await anyio.to_thread.run_sync(core.events.trim_archives, oldest)
