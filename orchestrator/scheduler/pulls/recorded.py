"""What a task's record says of its pull request (``metadata.pull``), read without the forge:
the pull request as last seen, and the feedback round it asked for. ``PullsPart`` reads an
attempt's feedback round and a landing through the forge here, whatever the run lands by; the
follower and its parts the pull request as last seen."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from orchestrator.models import TaskState
from orchestrator.task_meta import TaskMeta

if TYPE_CHECKING:
    from orchestrator.scheduler.attempts.attempt import Attempt
    from orchestrator.scheduler.context import RunContext
    from orchestrator.worktrees.models import SessionWorktree

__all__ = ["adopt_for_feedback", "feedback_of", "recorded_pull"]


def recorded_pull(metadata: Mapping[str, Any]) -> dict[str, Any] | None:
    """The task's pull request as its record ``metadata`` last saw it (``PullState``, as the
    mapping the follower works on); None when it has none (or a damaged one)."""
    pull = TaskMeta.read(metadata).pull.pull
    return pull.dump() if pull is not None else None


def feedback_of(state: TaskState) -> str | None:
    """The feedback a build of this attempt answers (a pull request's feedback round)."""
    return TaskMeta.read(state.metadata).pull.pull_feedback or None


async def adopt_for_feedback(
    run: RunContext, attempt: Attempt, session_id: str, state: TaskState
) -> SessionWorktree | None:
    """A pull request's feedback round: its worktree was retired when the pull request
    opened; the branch it pushed is checked out again, commits kept."""
    if attempt.feedback is None or not state.branch:
        return None
    return await run.services.worktrees.adopt_session_worktree(
        session_id, attempt.adapter, attempt.worktree_task, state.branch
    )
