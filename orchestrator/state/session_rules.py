"""Decisions about sessions that any backend makes the same way."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.errors import StateError, TaskInActiveSession
from orchestrator.ids import check_id
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_SESSION_STATUSES,
    ClaimStatus,
    SessionRecord,
    TaskState,
    TaskStatus,
)
from orchestrator.state.protocol import TaskInit

__all__ = [
    "holding_session",
    "recovery_updates",
    "refuse_if_held",
    "removable_session",
    "task_init_fields",
]


def holding_session(current: TaskState | None) -> str | None:
    """The session that may still hold a task as it is now (None: nobody can: it has no
    state, no session, or it was cancelled, so a new session may take it)."""
    if current is None or current.session_id is None:
        return None
    if current.status == TaskStatus.CANCELLED:
        return None  # nobody works on a cancelled task
    return current.session_id


def refuse_if_held(task_id: str, owner: SessionRecord | None) -> None:
    """``TaskInActiveSession`` when ``owner`` (``holding_session``'s) is still active or
    interrupted: one rule for both stores and the read-only check before a run."""
    if owner is not None and owner.status in ACTIVE_SESSION_STATUSES:
        raise TaskInActiveSession(task_id, owner.session_id, str(owner.status))


def task_init_fields(task: TaskInit) -> dict[str, Any]:
    """A ``create_session`` task entry as initial fields, with a checked ``task_id``."""
    if isinstance(task, str):
        return {"task_id": check_id(task, "task id")}
    if not isinstance(task, Mapping) or "task_id" not in task:
        raise StateError(f"a session task must be an id or a mapping with task_id, not {task!r}")
    fields = dict(task)
    check_id(str(fields["task_id"]), "task id")
    return fields


def batch_fields(session_id: str, tasks: Sequence[TaskInit]) -> tuple[str, list[dict[str, Any]]]:
    """``add_session_tasks``'s checked arguments: the session id and each task's initial
    fields (``task_init_fields``); a batch naming one task twice is refused."""
    sid = check_id(session_id, "session id")
    inits = [task_init_fields(t) for t in tasks]
    task_ids = [str(f["task_id"]) for f in inits]
    if len(set(task_ids)) != len(task_ids):
        raise StateError(f"session {sid!r}: duplicate task ids in the batch {task_ids}")
    return sid, inits


def recovery_updates(task: TaskState, now: datetime, force: bool) -> dict[str, Any]:
    """What a task needs so that a resumed run can pick it up, or {} when it is fine as is.

    A task left ``running`` behind a claim whose lease lapsed (or, with ``force``, behind any
    claim: the caller knows its holder is dead) goes back to the queue with its claim marked
    abandoned. Work already on its branch is untouched; the workflow resumes from the phases
    recorded complete. ``merging`` is left for the merge queue, which checks the base branch
    before merging anything again.
    """
    if task.status != TaskStatus.RUNNING:
        return {}
    claim = task.claim
    if claim is not None and claim.is_live(now) and not force:
        return {}
    updates: dict[str, Any] = {"status": TaskStatus.QUEUED}
    if claim is not None and claim.status == ClaimStatus.ACTIVE:
        updates["claim"] = claim.model_copy(
            update={"status": ClaimStatus.ABANDONED, "released_at": now}
        )
    return updates


def removable_session(session: SessionRecord, cutoff: datetime) -> bool:
    """Finished before ``cutoff``: active and interrupted sessions are never removed."""
    return session.status in TERMINAL_SESSION_STATUSES and session.updated_at < cutoff
