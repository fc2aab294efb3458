"""Issues as tasks (``orchestrator.forge.issue_tasks``): a source read, an issue left out,
a queued task whose issue no longer matches, and a forge call that failed (a warning: the
run goes on without it)."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TaskEvent, TypedEvent

__all__ = ["ForgeCallFailed", "IssueSkipped", "IssueWithdrawn", "IssuesRead"]


class IssuesRead(TypedEvent):
    """The run's issue sources were read: ``found`` issues matched, ``new`` the tasks they
    added to the run (said when there is one, and on the first read)."""

    type: Literal["issues.read"] = "issues.read"
    found: int
    new: list[str]


class IssueSkipped(TypedEvent):
    """Issue ``issue`` matched a source but is not a task: ``reason`` (a bad ``council``
    block, an unknown dependency); the issue is told once."""

    type: Literal["issue.skipped"] = "issue.skipped"
    level: str = "warning"
    issue: int
    url: str
    reason: str


class IssueWithdrawn(TaskEvent):
    """The issue of a task not started yet was closed or lost its labels: the task is
    cancelled."""

    type: Literal["issue.withdrawn"] = "issue.withdrawn"
    issue: int
    reason: str


class ForgeCallFailed(TypedEvent):
    """A call to the forge failed (``action``: list issues, comment, label...); the run goes
    on. ``error`` names the request and the forge's answer, never the token."""

    type: Literal["forge.call_failed"] = "forge.call_failed"
    level: str = "warning"
    action: str
    issue: int | None = None
    error: str
