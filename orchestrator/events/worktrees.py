"""Session worktrees: made, made again, finished, rescued, removed, adopted."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from orchestrator.events.base import TaskEvent

__all__ = [
    "WorktreeAdopted",
    "WorktreeCreated",
    "WorktreeFinished",
    "WorktreeRecreated",
    "WorktreeRemoved",
    "WorktreeRescued",
]


class _Worktree(TaskEvent):
    """A session's worktree (``worktrees.models.SessionWorktree``)."""

    session_id: str
    cli: str
    path: str
    branch: str
    base_commit: str
    created_at: datetime


class WorktreeCreated(_Worktree):
    type: Literal["worktree.created"] = "worktree.created"


class WorktreeRecreated(_Worktree):
    type: Literal["worktree.recreated"] = "worktree.recreated"


class WorktreeFinished(TaskEvent):
    """A worktree a crash left half made was finished."""

    type: Literal["worktree.finished"] = "worktree.finished"
    session_id: str


class WorktreeRescued(TaskEvent):
    """Work not on the base was kept on a rescue ref, in ``commit``, before removal."""

    type: Literal["worktree.rescued"] = "worktree.rescued"
    session_id: str
    commit: str


class WorktreeRemoved(TaskEvent):
    """A session's worktree retired (``worktrees.models.RemovalResult``)."""

    type: Literal["worktree.removed"] = "worktree.removed"
    session_id: str
    branch: str
    tip: str | None = None
    merged: bool
    rescue_commit: str | None = None
    rescue_ref: str | None = None
    worktree_removed: bool = False
    pooled: bool = False
    branch_deleted: bool = False


class WorktreeAdopted(TaskEvent):
    """A worktree left by a run whose state is gone, taken in (``worktrees.orphans``): its
    uncommitted work committed as ``commit`` on ``branch`` (tip ``tip``), the worktree removed;
    or, its directory gone, git's record of it dropped. ``message`` says it in one line."""

    type: Literal["worktree.adopted"] = "worktree.adopted"
    level: str = "warning"
    session_id: str
    path: str
    branch: str
    tip: str | None = None
    commit: str | None = None
    message: str
