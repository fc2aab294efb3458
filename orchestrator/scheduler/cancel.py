"""Cancelling a task from any process: ``request_cancel(store, task_id)``, read by the scheduler.

Contract:

- ``request_cancel(store, task_id)`` records a cancel request: a keyed record (namespace
  ``cancel_requests``, key = the task id) naming the task's session. It lives apart from the
  task's own record, so no read-modify-write of the task by a running orchestrator can drop
  it. A task nobody works on now (``queued`` or ``parked``) is also marked ``cancelled`` at
  once, by a compare-and-set on its version, so it never overwrites a claim taken meanwhile
  (that case is retried and becomes a running one). It returns the task's state after the
  request.
- A running task (``running``, ``merging``, or a council task whose candidates run) keeps its
  status until the orchestrator running its session sees the request in its reconcile step
  (next tick): the attempt is cancelled (the workflow commits the CLI's work on the task's
  branch and returns), its claim is released as abandoned, its file locks too, and the task
  ends ``cancelled`` with its branch kept. A merge that already started is not undone: the
  task then ends ``done`` and the request is dropped with a ``task.cancel_too_late`` event.
- With no orchestrator running, the request waits: ``council resume`` applies it first thing.
- Cancelling a task that already ended (done, failed, conflict, cancelled) raises
  ``CancelError``; an unknown task raises ``RecordNotFound``.

``pending_cancels(store, session_id)`` is what the scheduler reads each tick (one directory
listing when there are none); ``clear_cancel`` drops a request once its task has ended.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import CancelError, RecordNotFound, RunError, VersionConflict
from orchestrator.events.tasks import TaskCancelled
from orchestrator.models import (
    RESUMABLE_TASK_STATUSES,
    TERMINAL_TASK_STATUSES,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.process import procid
from orchestrator.state.protocol import StateStore

__all__ = [
    "CANCEL_REQUESTS",
    "clear_cancel",
    "pending_cancels",
    "request_cancel",
]

CANCEL_REQUESTS = "cancel_requests"  # keyed-record namespace: task id -> the request
CANCELLED_BY_REQUEST = "cancelled on request"
_CAS_TRIES = 20


async def request_cancel(store: StateStore, task_id: str) -> TaskState:
    """Ask for ``task_id`` to be cancelled (see the module doc); its state afterwards."""
    requested = False
    for _ in range(_CAS_TRIES):
        state = await store.get_task_state(task_id)
        if state is None:
            raise RecordNotFound(f"there is no task {task_id!r}")
        if requested and state.status == TaskStatus.CANCELLED:
            # The running orchestrator carried out our request between our request and our
            # own write (which then lost its compare-and-set): done, not "already ended".
            return state
        if state.status in TERMINAL_TASK_STATUSES:
            raise CancelError(
                f"task {task_id!r} already ended ({state.status}); there is nothing to cancel"
            )
        await store.put_record(CANCEL_REQUESTS, task_id, _request(state))
        requested = True
        if state.status not in RESUMABLE_TASK_STATUSES:
            return state  # its orchestrator cancels the attempt on its next tick
        try:
            cancelled = await store.update_task_state(
                task_id, cancelled_updates(state), expected_version=state.version
            )
        except VersionConflict:
            continue  # claimed or changed meanwhile: look again
        await store.emit(TaskCancelled(task_id=task_id))
        return cancelled
    raise RunError(f"task {task_id!r} kept changing; the cancel request stands for its run")


def cancelled_updates(state: TaskState, why: str = CANCELLED_BY_REQUEST) -> dict[str, Any]:
    """The write that ends a task nobody runs as ``cancelled`` (its branch, if any, kept)."""
    kept = f"; work kept on branch {state.branch}" if state.branch else ""
    updates: dict[str, Any] = {
        "status": TaskStatus.CANCELLED,
        "current_phase": None,
        "finished_at": utcnow(),
        "error": why + kept,
    }
    return updates


async def pending_cancels(store: StateStore, session_id: str) -> list[str]:
    """Task ids with a cancel request for session ``session_id``, oldest request first."""
    records = await store.list_records(CANCEL_REQUESTS)
    mine = [r for r in records if r.data.get("session_id") == session_id]
    return [r.key for r in sorted(mine, key=lambda r: r.updated_at)]


async def clear_cancel(store: StateStore, task_id: str) -> None:
    """Drop the request for ``task_id`` (it has been carried out, or came too late)."""
    await store.delete_record(CANCEL_REQUESTS, task_id)


def _request(state: TaskState) -> dict[str, Any]:
    return {
        "session_id": state.session_id,
        "requested_at": utcnow().isoformat(),
        "by": procid.current().as_dict(),
    }
