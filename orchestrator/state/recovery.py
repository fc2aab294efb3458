"""Bringing a session whose orchestrator died back to a resumable state, the same way on every
backend (it asks the store only through ``StateStore``).

A session whose own record is missing or damaged comes back from its newest checkpoint. Its
tasks left ``running`` behind a lapsed claim (any claim, with ``force``: the caller knows the
holder is dead) go back to the queue (``session_rules.recovery_updates``); a task whose record
is gone starts afresh, queued. The session is active again afterwards.
"""

from __future__ import annotations

from datetime import datetime

from orchestrator.errors import RecordNotFound, StateCorrupted
from orchestrator.events.state import SessionRecovered, StateRecovered
from orchestrator.models import SessionSnapshot, TaskState
from orchestrator.state.protocol import StateStore
from orchestrator.state.session_rules import recovery_updates

__all__ = ["recover_session"]


async def recover_session(
    store: StateStore, session_id: str, *, force: bool, now: datetime
) -> SessionSnapshot:
    """Recover session ``session_id`` (module doc); ``now`` decides which leases lapsed."""
    try:
        session = await store.get_session(session_id)
    except StateCorrupted:
        session = None
    if session is None:
        checkpoints = await store.list_checkpoints(session_id)
        if not checkpoints:
            raise RecordNotFound(
                f"session {session_id!r} is missing or damaged and has no checkpoint"
            )
        await store.restore_checkpoint(checkpoints[-1].checkpoint_id)
        session = await store.get_session(session_id)
        assert session is not None
    requeued: list[str] = []
    for task_id in session.task_ids:
        task = await store.get_task_state(task_id)
        if task is None:
            # Its record was moved away (as a damaged record's error advises) or lost:
            # started afresh, queued; the run's checks of the base and the task's branch
            # decide what is left to do.
            fresh = TaskState(task_id=task_id, session_id=session_id).model_dump()
            await store.update_task_state(task_id, fresh)
            requeued.append(task_id)
            await store.emit(
                StateRecovered(
                    kind="tasks", key=task_id, reason="record missing", started_afresh=True
                )
            )
            continue
        if task.session_id != session_id:
            continue
        fix = recovery_updates(task, now, force)
        if fix:
            await store.update_task_state(task_id, fix)
            requeued.append(task_id)
    session = await store.update_session(session_id, {"status": "active"})
    await store.emit(SessionRecovered(session_id=session_id, requeued=requeued))
    return SessionSnapshot(session=session, tasks=await store.list_tasks(session_id))
