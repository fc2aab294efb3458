"""``FileStateStore``: the embedded state backend, versioned JSON records on local disk.

The store is assembled from its parts: ``FileBase`` (layout, locking, threads, events),
``FileTasks`` (tasks and claims), and here sessions and checkpoints.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import Any, TypeVar

import anyio.to_thread
from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import (
    RecordNotFound,
    StateCorrupted,
    StateError,
    TaskInActiveSession,
)
from orchestrator.events import Event, EventType
from orchestrator.ids import check_id
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    Checkpoint,
    CheckpointInfo,
    SessionMetrics,
    SessionRecord,
    SessionSnapshot,
    TaskState,
    utcnow,
)
from orchestrator.state.file.base import STORE_OWNED, check_version, load_or_recover, new_id
from orchestrator.state.file.keyed import FileRecords
from orchestrator.state.file.records import RecordKind
from orchestrator.state.file.tasks import FileTasks
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.protocol import TaskInit
from orchestrator.state.session_rules import (
    recovery_updates,
    removable_session,
    task_init_fields,
)

__all__ = ["FileStateStore"]

M = TypeVar("M", bound=BaseModel)


class FileStateStore(FileTasks, FileRecords):
    """The file backend of ``StateStore``; safe across threads, tasks and OS processes."""

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]:
        if session_id is None:
            return await self._read_many(self.tasks, None)
        session = await self._read(self.sessions, session_id)
        if session is None:
            return []
        found = await self._read_many(self.tasks, list(session.task_ids))
        return [t for t in found if t.session_id == session_id]

    async def create_session(
        self,
        options: Mapping[str, Any],
        tasks: Sequence[TaskInit],
        session_id: str | None = None,
    ) -> SessionRecord:
        sid = check_id(session_id or new_id("s"), "session id")
        inits = [task_init_fields(t) for t in tasks]
        task_ids = [str(f["task_id"]) for f in inits]
        if len(set(task_ids)) != len(task_ids):
            raise StateError(f"session {sid!r}: duplicate task ids in {task_ids}")
        if await self._read(self.sessions, sid) is not None:
            raise StateError(f"session {sid!r} already exists")
        # Every task is checked before any is taken: a refused session leaves no record of
        # another session pointing at it.
        for task_id in task_ids:
            await self._refuse_if_owned(task_id)
        for fields in inits:
            fresh = TaskState(task_id=str(fields["task_id"]), session_id=sid).model_dump()
            await self.update_task_state(str(fields["task_id"]), {**fresh, **fields})

        def run(events: list[Event]) -> SessionRecord:
            if load_or_recover(self.sessions, sid, events) is not None:
                raise StateError(f"session {sid!r} already exists")
            members = [t for t in map(self._peek_task, task_ids) if t is not None]
            fields = {
                "options": dict(options),
                "task_ids": task_ids,
                "metrics": compute_metrics(members),
            }
            record = self._write_merged(self.sessions, sid, None, fields, {}, events)
            events.append(Event(type=EventType.SESSION_CREATED, data={"session_id": sid}))
            return record

        async with self._locked(self.sessions, sid):
            return await self._in_thread(run)

    async def _refuse_if_owned(self, task_id: str) -> None:
        current = await self.get_task_state(task_id)
        if current is None or current.session_id is None:
            return
        owner = await self._read(self.sessions, current.session_id)
        if owner is not None and owner.status in ACTIVE_SESSION_STATUSES:
            raise TaskInActiveSession(
                f"task {task_id!r} belongs to session {owner.session_id!r}, which is still "
                f"{owner.status}: continue that run with `council resume <config>`, or drop "
                f"the task from it with `council cancel <config> {task_id}`"
            )

    async def get_session(self, session_id: str) -> SessionRecord | None:
        session = await self._read(self.sessions, session_id)
        return await self._with_metrics(session) if session is not None else None

    async def _with_metrics(self, session: SessionRecord) -> SessionRecord:
        """``session`` with its metrics computed from its tasks as they are now.

        Metrics are derived, so they are computed when a session is read rather than written
        into the session record on every task change: a task write then costs no session
        lock, no second durable write and no read of every other task of the session.
        """
        sid = session.session_id

        def compute() -> SessionMetrics:
            members = (self._peek_task(task_id) for task_id in session.task_ids)
            return compute_metrics(t for t in members if t is not None and t.session_id == sid)

        metrics = await anyio.to_thread.run_sync(compute)
        return session.model_copy(update={"metrics": metrics})

    async def update_session(
        self,
        session_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
    ) -> SessionRecord:
        check_id(session_id, "session id")
        if "metrics" in updates:
            raise StateError("session metrics are computed by the store, not written")

        def run(events: list[Event]) -> SessionRecord:
            current = load_or_recover(self.sessions, session_id, events)
            if current is None:
                raise RecordNotFound(f"session {session_id!r} does not exist")
            check_version(self.sessions, session_id, current, expected_version)
            new = self._write_merged(self.sessions, session_id, current, updates, {}, events)
            events.append(Event(type=EventType.SESSION_UPDATED, data={"session_id": session_id}))
            return new

        async with self._locked(self.sessions, session_id):
            record = await self._in_thread(run)
        return await self._with_metrics(record)

    async def get_active_sessions(self) -> list[SessionRecord]:
        found = await self._read_many(self.sessions, None)
        return [await self._with_metrics(s) for s in found if s.status in ACTIVE_SESSION_STATUSES]

    async def recover_session(self, session_id: str, *, force: bool = False) -> SessionSnapshot:
        try:
            session = await self.get_session(session_id)
        except StateCorrupted:
            session = None
        if session is None:
            checkpoints = await self.list_checkpoints(session_id)
            if not checkpoints:
                raise RecordNotFound(
                    f"session {session_id!r} is missing or damaged and has no checkpoint"
                )
            await self.restore_checkpoint(checkpoints[-1].checkpoint_id)
            session = await self.get_session(session_id)
            assert session is not None
        now = utcnow()
        requeued: list[str] = []
        for task_id in session.task_ids:
            task = await self.get_task_state(task_id)
            if task is None:
                # Its record was moved away (as a damaged record's error advises) or lost:
                # started afresh, queued; the run's checks of the base and the task's branch
                # decide what is left to do.
                fresh = TaskState(task_id=task_id, session_id=session_id).model_dump()
                await self.update_task_state(task_id, fresh)
                requeued.append(task_id)
                await self.emit(
                    Event(
                        type=EventType.STATE_RECOVERED,
                        data={
                            "kind": "tasks",
                            "key": task_id,
                            "reason": "record missing",
                            "started_afresh": True,
                        },
                        level="warning",
                    )
                )
                continue
            if task.session_id != session_id:
                continue
            fix = recovery_updates(task, now, force)
            if fix:
                await self.update_task_state(task_id, fix)
                requeued.append(task_id)
        session = await self.update_session(session_id, {"status": "active"})
        await self.emit(
            Event(
                type=EventType.SESSION_RECOVERED,
                data={"session_id": session_id, "requeued": requeued},
            )
        )
        return SessionSnapshot(session=session, tasks=await self.list_tasks(session_id))

    async def cleanup_old_sessions(self, days: float) -> int:
        cutoff = utcnow() - timedelta(days=days)
        removed = 0
        for session_id in await anyio.to_thread.run_sync(self.sessions.keys):
            session = await self._read(self.sessions, session_id)
            if session is None or not removable_session(session, cutoff):
                continue
            for task_id in session.task_ids:
                task = await self.get_task_state(task_id)
                if task is not None and task.session_id == session_id:
                    await self._delete(self.tasks, task_id)
            await anyio.to_thread.run_sync(self.checkpoints.delete_session, session_id)
            await self._delete(self.sessions, session_id)
            await self.emit(Event(type=EventType.SESSION_REMOVED, data={"session_id": session_id}))
            removed += 1
        return removed

    async def _delete(self, kind: RecordKind[Any], key: str) -> None:
        lock = await filelock.acquire(
            kind.lock_path(key), timeout=self.lock_timeout, root=self.anchor
        )
        try:
            await anyio.to_thread.run_sync(kind.delete, key)
        finally:
            lock.unlink_and_release()
        await anyio.to_thread.run_sync(kind.remove_dir_if_empty, key)

    # -- checkpoints ------------------------------------------------------------------------

    async def create_checkpoint(self, session_id: str, reason: str) -> CheckpointInfo:
        session = await self.get_session(session_id)
        if session is None:
            raise RecordNotFound(f"session {session_id!r} does not exist")
        tasks = [t for t in [await self.get_task_state(k) for k in session.task_ids] if t]
        checkpoint = Checkpoint(
            checkpoint_id=new_id("ck"),
            session_id=session_id,
            reason=reason,
            created_at=utcnow(),
            task_count=len(tasks),
            session=session,
            tasks=tasks,
        )

        def run(events: list[Event]) -> None:
            self.checkpoints.write(checkpoint)
            events.append(
                Event(
                    type=EventType.CHECKPOINT_CREATED,
                    data={
                        "checkpoint_id": checkpoint.checkpoint_id,
                        "session_id": session_id,
                        "reason": reason,
                    },
                )
            )

        lock = await filelock.acquire(
            self.checkpoints.lock_path, shared=True, timeout=self.lock_timeout, root=self.anchor
        )
        try:
            await self._in_thread(run)
        finally:
            lock.release()
        return checkpoint.info()

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]:
        return await anyio.to_thread.run_sync(self.checkpoints.list, session_id)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        return await anyio.to_thread.run_sync(self.checkpoints.read, checkpoint_id)

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        checkpoint = await self.get_checkpoint(checkpoint_id)
        for task in checkpoint.tasks:
            await self._restore_record(self.tasks, task.task_id, task)
        await self._restore_record(self.sessions, checkpoint.session_id, checkpoint.session)
        await self.emit(
            Event(
                type=EventType.CHECKPOINT_RESTORED,
                data={"checkpoint_id": checkpoint_id, "session_id": checkpoint.session_id},
            )
        )
        session = await self.get_session(checkpoint.session_id)
        assert session is not None
        return SessionSnapshot(session=session, tasks=await self.list_tasks(session.session_id))

    async def _restore_record(self, kind: RecordKind[M], key: str, saved: M) -> None:
        def run(events: list[Event]) -> None:
            try:
                current = load_or_recover(kind, key, events)
            except StateCorrupted:
                current = None  # the damaged file stays in quarantine; the checkpoint wins
            fields = saved.model_dump(exclude=set(STORE_OWNED))
            self._write_merged(kind, key, current, fields, {}, events)

        async with self._locked(kind, key):
            await self._in_thread(run)

    # -- events and upkeep ------------------------------------------------------------------
