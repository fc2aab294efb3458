"""One attempt in flight, as this scheduler sees it."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.task import TaskConfig
from orchestrator.errors import SecretInHistory
from orchestrator.models import TaskState
from orchestrator.scheduler.candidates import group_lock_owner
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["MAX_RECHECKS", "MAX_RESOLVE_ROUNDS", "MERGE_RECHECK", "Attempt"]

# What the scheduler keeps in a task's metadata is typed in ``orchestrator.task_meta``.
MAX_RECHECKS = 3  # beyond these, a recheck counts as a failed attempt (bounded either way)
MAX_RESOLVE_ROUNDS = 1  # conflicts answered by building again on the base, at most
MERGE_RECHECK = 0.5  # seconds between merges retried while the base's checkout is dirty


@dataclass(eq=False)
class Attempt:
    """One attempt in flight, as this scheduler sees it."""

    task: TaskConfig
    adapter: str
    phase: str | None
    seq: int  # dispatch order: the earlier of two conflicting branches lands first
    files: frozenset[str]
    started: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)
    token: int = 0
    number: int = 0  # the task's attempt count its claim wrote (``TaskState.attempt``)
    team_token: int = 0  # the claim's token its team file ownership was taken under
    session: SessionWorktree | None = None
    fresh_worktree: bool = False  # its worktree was made for it at the base, untouched since
    lost: bool = False  # the claim lapsed: this attempt may not write any more
    releasing: bool = False  # its claim is being released: a renewal failing now is no loss
    landed: bool = False  # merged into the base: its branch may be deleted at any moment
    timed_out: bool = False
    files_changed: frozenset[str] = frozenset()
    last_message: str = ""
    slot_free: bool = False  # the CLI work is over; the attempt is settling or merging
    group: str | None = None  # a council candidate: the council task it is a candidate of
    picking: bool = False  # the council step of a council task (compare, merge the winner)
    cancel_requested: bool = False  # someone asked for the task to be cancelled
    worktree_gone: bool = False  # its worktree was deleted under it (seen by the reconcile)
    locks_released: bool = False  # the session's locks were released (the attempt is over)
    written: TaskState | None = None  # the task as this attempt's last fenced write left it
    merging_written: bool = False  # the task was written ``merging`` (its merge had to wait)
    waiting: str = ""  # what its landing waits for now (an earlier branch, the checkout)
    waiting_written: str = ""  # ... as last written into the task's metadata
    usage: Usage | None = None  # the attempt's usage, not yet added to the task's total
    note: str | None = None  # why the task's last attempt changed nothing (its build is told)
    feedback: str | None = None  # its pull request's feedback, which this build answers
    relanding: bool = False  # lands a vanished landing again from its kept branch (no CLI)
    # Its work held a secret when it was to be pushed (``team.work``): stopped, failed, kept.
    secret: SecretInHistory | None = None
    cancel: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)

    @property
    def key(self) -> str:
        return self.task.id

    @property
    def worktree_task(self) -> str:
        """The task id the worktree and branch are made for (a candidate's council task)."""
        return self.group or self.task.id

    def lock_owner(self, session_id: str) -> str:
        """Who the attempt's file locks are held by."""
        return group_lock_owner(self.group) if self.group else session_id

    def touches(self) -> frozenset[str]:
        return self.files | self.files_changed

    def request_cancel(self) -> None:
        """Someone asked for the task to be cancelled: its workflow is told to stop."""
        self.cancel_requested = True
        self.cancel.set()
