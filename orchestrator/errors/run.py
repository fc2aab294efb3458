"""A run cannot start or continue: the run lock, nothing to resume, a task that cannot be
cancelled or queued again, a bad id, a full disk."""

from __future__ import annotations

from orchestrator.errors.base import CouncilError

__all__ = [
    "CancelError",
    "InvalidIdError",
    "NothingToResume",
    "OutOfSpace",
    "RequeueError",
    "RunError",
    "RunLocked",
    "WorkflowError",
]


class RunError(CouncilError):
    """A run cannot start or continue."""


class RunLocked(RunError):
    """Another live orchestrator holds the repository's run lock (exit code 2: the command
    was refused before it changed anything)."""


class NothingToResume(RunError, ValueError):
    """``resume`` found no interrupted session (exit code 2: the user asked for something
    that is not there; nothing was created)."""


class CancelError(RunError):
    """The task cannot be cancelled (it already ended)."""


class RequeueError(RunError):
    """The task cannot be queued again as asked: a retry of one that has not ended, a rebase
    of one without an open pull request (``scheduler.retry``)."""


class WorkflowError(RunError):
    """The workflow cannot go on as asked (for example: no candidate to pick from)."""


class InvalidIdError(RunError, ValueError):
    """An id does not match ``^[a-z0-9][a-z0-9._-]{0,63}$``."""


class OutOfSpace(RunError):
    """A file system the run writes to (the repository, its worktrees, the state) is full.

    Not the task's fault, and no retry can help until someone frees space: the run stops
    where it stands, as a killed run would, and ``council resume`` continues it. ``detail``
    is the refused operation (naming the file), ``kept`` where the interrupted work is.
    """

    def __init__(self, detail: str, kept: str) -> None:
        self.detail = detail
        self.kept = kept
        super().__init__(
            f"no space left: {detail}; nothing is lost: {kept}; free space on that file "
            "system, then `council resume` continues the run"
        )
