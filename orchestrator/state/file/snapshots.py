"""Checkpoints of the file backend: immutable snapshots of a session and its tasks, made, listed
and restored (a restore writes each record's next version)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TypeVar

import anyio.to_thread
from pydantic import BaseModel

from orchestrator import filelock
from orchestrator.errors import RecordNotFound, StateCorrupted
from orchestrator.events import Event
from orchestrator.events.state import CheckpointCreated, CheckpointRestored
from orchestrator.models import (
    Checkpoint,
    CheckpointInfo,
    SessionRecord,
    SessionSnapshot,
    TaskState,
    utcnow,
)
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.record_files.records import RecordKind
from orchestrator.state.file.sessions import FileSessions
from orchestrator.state.file.tasks import FileTasks
from orchestrator.state.metrics import compute_metrics
from orchestrator.state.record_rules import STORE_OWNED, new_id

__all__ = ["FileSnapshots"]

M = TypeVar("M", bound=BaseModel)


class FileSnapshots:
    def __init__(self, core: FileCore, tasks: FileTasks, sessions: FileSessions) -> None:
        self._core = core
        self._tasks = tasks
        self._sessions = sessions
        # The checkpoint this store wrote last, as a model and as its file's bytes: a stop's
        # report reads it back at once (``run.reports.session_report.stopped_report``), and a
        # run of 10,000 tasks should not parse again the megabytes it has just written.
        self._made: tuple[Checkpoint, bytes] | None = None

    async def create_checkpoint(
        self,
        session_id: str,
        reason: str,
        known: Mapping[str, TaskState] | None = None,
        held: SessionRecord | None = None,
    ) -> CheckpointInfo:
        core = self._core
        # The session's record as the caller holds it, when its file is exactly that (a stop
        # has just written it: megabytes of options for 10,000 tasks, not parsed again).
        bare = await core.read(core.sessions, session_id, held)
        if bare is None:
            raise RecordNotFound(f"session {session_id!r} does not exist")
        # One worker-thread call for them all (a session of 10,000 tasks: not 10,000 hops),
        # and the session's metrics from the same tasks, not from a second read of each. A
        # record the caller holds is not parsed again when its file holds exactly it (a stop's
        # view of 10,000 tasks: most of them), only compared with it.
        tasks = await core.read_many(core.tasks, list(bare.task_ids), known)
        members = (task for task in tasks if task.session_id == session_id)
        session = bare.model_copy(update={"metrics": compute_metrics(members)})
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
            self._made = core.checkpoints.write(checkpoint)
            events.append(
                CheckpointCreated(
                    checkpoint_id=checkpoint.checkpoint_id, session_id=session_id, reason=reason
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
        made = self._made
        if made is not None and made[0].checkpoint_id == checkpoint_id:
            self._made = None  # handed out once: the caller may change its copy

            def unchanged() -> bool:
                try:
                    return core.checkpoints.path(checkpoint_id).read_bytes() == made[1]
                except OSError:
                    return False

            if await anyio.to_thread.run_sync(unchanged):
                return made[0]  # the file holds what was written: the model it was made of
        return await anyio.to_thread.run_sync(core.checkpoints.read, checkpoint_id)

    async def restore_checkpoint(self, checkpoint_id: str) -> SessionSnapshot:
        core = self._core
        checkpoint = await self.get_checkpoint(checkpoint_id)
        for task in checkpoint.tasks:
            await self._restore_record(core.tasks, task.task_id, task)
        await self._restore_record(core.sessions, checkpoint.session_id, checkpoint.session)
        await core.emit(
            CheckpointRestored(checkpoint_id=checkpoint_id, session_id=checkpoint.session_id)
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

        await core.locked_call(kind, key, run)
