"""Decisions about sessions that any backend makes the same way."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.errors import StateError
from orchestrator.ids import check_id
from orchestrator.models import (
    TERMINAL_SESSION_STATUSES,
    ClaimStatus,
    SessionRecord,
    TaskState,
    TaskStatus,
)
from orchestrator.state.protocol import TaskInit

__all__ = ["recovery_updates", "removable_session", "task_init_fields"]


def task_init_fields(task: TaskInit) -> dict[str, Any]:
    """A ``create_session`` task entry as initial fields, with a checked ``task_id``."""
    if isinstance(task, str):
        return {"task_id": check_id(task, "task id")}
    if not isinstance(task, Mapping) or "task_id" not in task:
        raise StateError(f"a session task must be an id or a mapping with task_id, not {task!r}")
    fields = dict(task)
    check_id(str(fields["task_id"]), "task id")
    return fields


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
