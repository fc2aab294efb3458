"""Task records in the file backend: read, written (fenced when the caller holds a claim),
their history, and the tasks of a session."""

from __future__ import annotations

import os
from collections.abc import Callable, Hashable, Mapping, Sequence
from typing import Any

import anyio.to_thread

from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import SessionRecord, TaskState
from orchestrator.state.claim_rules import check_fence
from orchestrator.state.file.core import FileCore, load_or_recover
from orchestrator.state.file.lockfree import Unchanged, peek, read_changed, read_present
from orchestrator.state.file.record_files.codec import RecordDamaged
from orchestrator.state.file.record_files.layout import stat_identity
from orchestrator.state.file.record_files.stamps import Stamps
from orchestrator.state.file.rules import check_version
from orchestrator.state.protocol.task_changes import TaskChanges, listed_stamp, task_stamp

__all__ = ["FileTasks"]


class FileTasks:
    def __init__(self, core: FileCore) -> None:
        self._core = core
        # What ``list_tasks_changed`` compares, kept as the records are read and written.
        core.tasks.stamps = Stamps(task_stamp)
        core.sessions.stamps = Stamps(listed_stamp)

    async def get_task_state(self, task_id: str) -> TaskState | None:
        core = self._core
        return await core.read(core.tasks, task_id)

    async def get_task_states(self, task_ids: Sequence[str]) -> list[TaskState]:
        core = self._core
        for task_id in task_ids:  # each name checked before any is read
            check_id(task_id, "task id")
        return await core.read_many(core.tasks, list(task_ids)) if task_ids else []

    async def update_task_state(
        self,
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        durable: bool = True,
    ) -> TaskState:
        core = self._core
        check_id(task_id, "task id")

        def run(events: list[Event]) -> TaskState:
            current = load_or_recover(core.tasks, task_id, events)
            check_version(core.tasks, task_id, current, expected_version)
            if fencing_token is not None:
                check_fence(task_id, current, fencing_token)
            return core.write_merged(
                core.tasks, task_id, current, updates, {}, events, durable=durable
            )

        return await core.locked_call(core.tasks, task_id, run)

    async def task_history(self, task_id: str) -> list[TaskState]:
        core = self._core
        current = await self.get_task_state(task_id)
        if current is None:
            return []
        found = await core.locked_call(
            core.tasks, task_id, lambda _: list(core.tasks.iter_history(task_id)), shared=True
        )
        # After a recovery the current version is linked into history too (see records).
        return [t for t in found if t.version < current.version]

    async def list_tasks(self, session_id: str | None = None) -> list[TaskState]:
        core = self._core
        if session_id is None:
            return await core.read_many(core.tasks, None)
        if core.surely_absent(core.sessions, session_id):
            return []
        await core.settle_first()
        session: SessionRecord | None
        read = await anyio.to_thread.run_sync(self._session_and_tasks, session_id)
        if read is None:  # a transaction to settle, or damage to recover: the path of each
            session = await core.read(core.sessions, session_id)
            if session is None:
                return []
            found = await core.read_many(core.tasks, list(session.task_ids))
        else:
            session, listed = read
            found = []
            for key, record, damaged in listed:
                if damaged:
                    record = await core.recover(core.tasks, key)
                if record is not None:
                    found.append(record)
        return [t for t in found if t.session_id == session_id]

    async def list_tasks_changed(
        self, session_id: str, held: Mapping[str, TaskState]
    ) -> TaskChanges:
        core = self._core
        if core.surely_absent(core.sessions, session_id):
            return TaskChanges((), {})
        await core.settle_first()

        def unchanged(key: str, stamp: Hashable) -> bool:
            record = held.get(key)
            return (
                record is not None
                and record.session_id == session_id
                and (stamp == task_stamp(record))
            )

        read = await anyio.to_thread.run_sync(self._session_and_changed, session_id, unchanged)
        if read is None:  # the path of ``list_tasks``, which reads every record
            found = await self.list_tasks(session_id)
            return TaskChanges(tuple(t.task_id for t in found), {t.task_id: t for t in found})
        order: list[str] = []
        changed: dict[str, TaskState] = {}
        for key, record, damaged in read:
            if isinstance(record, Unchanged):
                order.append(key)
                continue
            if damaged:
                record = await core.recover(core.tasks, key)
            if record is not None and record.session_id == session_id:
                order.append(key)
                changed[key] = record
        return TaskChanges(tuple(order), changed)

    def _session_and_changed(
        self, session_id: str, unchanged: Callable[[str, Hashable], bool]
    ) -> list[tuple[str, TaskState | Unchanged | None, bool]] | None:
        """``_session_and_tasks`` for ``list_tasks_changed``: the session's task ids known by
        its file's identity when it is the one last seen (no parse of a record that lists
        every task with its config), the tasks read only where ``unchanged`` refuses the
        stamp last seen in their file (``lockfree.read_changed``)."""
        core = self._core
        if core.unsettled(core.sessions, session_id) or core.unsettled(core.tasks, None):
            return None
        sessions = core.sessions.stamps
        assert sessions is not None
        try:
            listed = sessions.stamp_at(
                session_id, stat_identity(os.stat(core.sessions.current_file(session_id)))
            )
        except OSError:
            listed = None  # gone, or unreadable: the read says which
        if listed is None:
            try:
                session = peek(core.sessions, session_id, track=True)
            except RecordDamaged:
                return None
            if session is None:
                return []
            listed = listed_stamp(session)
        assert isinstance(listed, tuple)
        return read_changed(core.tasks, list(listed), unchanged)

    def _session_and_tasks(
        self, session_id: str
    ) -> tuple[SessionRecord | None, list[tuple[str, TaskState | None, bool]]] | None:
        """The session's record and its tasks' (``read_present``), read without locks in one
        worker-thread call (blocking): the looks ``FileCore.read`` and ``read_many`` make in
        one call each. None when either must take its own path: a transaction's intent
        touches them (settled first), or the session's record reads as damaged."""
        core = self._core
        if core.unsettled(core.sessions, session_id) or core.unsettled(core.tasks, None):
            return None
        try:
            session = peek(core.sessions, session_id)
        except RecordDamaged:
            return None
        if session is None:
            return None, []
        return session, read_present(core.tasks, list(session.task_ids))
