"""Checkpoints of the file backend (immutable snapshots of a session and its tasks: made, listed,
restored), and bringing a session whose orchestrator died back to a resumable state, from its
last checkpoint when its own record is lost."""

from __future__ import annotations

from typing import TypeVar

import anyio.to_thread
from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateCorrupted
from orchestrator.events import Event, EventType
from orchestrator.models import Checkpoint, CheckpointInfo, SessionSnapshot, TaskState, utcnow
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.records import RecordKind
from orchestrator.state.file.rules import STORE_OWNED, new_id
from orchestrator.state.file.sessions import FileSessions
from orchestrator.state.file.tasks import FileTasks
from orchestrator.state.session_rules import recovery_updates

__all__ = ["FileSnapshots"]

M = TypeVar("M", bound=BaseModel)


class FileSnapshots:
    def __init__(self, core: FileCore, tasks: FileTasks, sessions: FileSessions) -> None:
        self._core = core
        self._tasks = tasks
        self._sessions = sessions

    async def recover_session(self, session_id: str, *, force: bool = False) -> SessionSnapshot:
        core = self._core
        try:
            session = await self._sessions.get_session(session_id)
        except StateCorrupted:
            session = None
        if session is None:
            checkpoints = await self.list_checkpoints(session_id)
            if not checkpoints:
                raise RecordNotFound(
                    f"session {session_id!r} is missing or damaged and has no checkpoint"
                )
            await self.restore_checkpoint(checkpoints[-1].checkpoint_id)
            session = await self._sessions.get_session(session_id)
            assert session is not None
        now = utcnow()
        requeued: list[str] = []
        for task_id in session.task_ids:
            task = await self._tasks.get_task_state(task_id)
            if task is None:
                # Its record was moved away (as a damaged record's error advises) or lost:
                # started afresh, queued; the run's checks of the base and the task's branch
                # decide what is left to do.
                fresh = TaskState(task_id=task_id, session_id=session_id).model_dump()
                await self._tasks.update_task_state(task_id, fresh)
                requeued.append(task_id)
                await core.emit(
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
                await self._tasks.update_task_state(task_id, fix)
                requeued.append(task_id)
        session = await self._sessions.update_session(session_id, {"status": "active"})
        await core.emit(
            Event(
                type=EventType.SESSION_RECOVERED,
                data={"session_id": session_id, "requeued": requeued},
            )
        )
        return SessionSnapshot(session=session, tasks=await self._tasks.list_tasks(session_id))

    async def create_checkpoint(self, session_id: str, reason: str) -> CheckpointInfo:
        core = self._core
        session = await self._sessions.get_session(session_id)
        if session is None:
            raise RecordNotFound(f"session {session_id!r} does not exist")
        tasks = [t for t in [await self._tasks.get_task_state(k) for k in session.task_ids] if t]
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
            core.checkpoints.write(checkpoint)
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
            core.checkpoints.lock_path, shared=True, timeout=core.lock_timeout, root=core.anchor
        )
        try:
            await core.in_thread(run)
        finally:
            lock.release()
        return checkpoint.info()

    async def list_checkpoints(self, session_id: str | None = None) -> list[CheckpointInfo]:
        core = self._core
        return await anyio.to_thread.run_sync(core.checkpoints.list, session_id)

    async def get_checkpoint(self, checkpoint_id: str) -> Checkpoint:
        core = self._core
        return await anyio.to_thread.run_sync(core.checkpoints.read, checkpoint_id)

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        core = self._core
        checkpoint = await self.get_checkpoint(checkpoint_id)
        for task in checkpoint.tasks:
            await self._restore_record(core.tasks, task.task_id, task)
        await self._restore_record(core.sessions, checkpoint.session_id, checkpoint.session)
        await core.emit(
            Event(
                type=EventType.CHECKPOINT_RESTORED,
                data={"checkpoint_id": checkpoint_id, "session_id": checkpoint.session_id},
            )
        )
        session = await self._sessions.get_session(checkpoint.session_id)
        assert session is not None
        return SessionSnapshot(
            session=session, tasks=await self._tasks.list_tasks(session.session_id)
        )

    async def _restore_record(self, kind: RecordKind[M], key: str, saved: M) -> None:
        core = self._core

        def run(events: list[Event]) -> None:
            try:
                current = load_or_recover(kind, key, events)
            except StateCorrupted:
                current = None  # the damaged file stays in quarantine; the checkpoint wins
            fields = saved.model_dump(exclude=set(STORE_OWNED))
            core.write_merged(kind, key, current, fields, {}, events)

        async with core.locked(kind, key):
            await core.in_thread(run)
