"""One attempt in flight, as this scheduler sees it.

Where the attempt is in its life is one stage (``lifecycle``), moved only along the allowed
transitions; ``lost``, ``releasing``, ``slot_free``, ``landed`` and ``merging_written`` are
read from it. The other fields are facts about the attempt, each written by the module its
comment names.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.task import TaskConfig
from orchestrator.errors import SecretInHistory
from orchestrator.models import PhaseRecord, TaskState
from orchestrator.scheduler.attempts.lifecycle import Lifecycle, Stage
from orchestrator.scheduler.candidates import group_lock_owner
from orchestrator.state.context import BusyRead
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
    # Its claim's last renewal: ``runner``, ``reconciler``, ``landing_log``.
    renewed: float = field(default_factory=time.monotonic)
    # The claim's token: taken by ``runner`` or ``council.step``, 0 once released (``writes``).
    token: int = 0
    number: int = 0  # the task's attempt count its claim wrote (``TaskState.attempt``)
    team_token: int = 0  # the claim's token its team file ownership was taken under
    session: SessionWorktree | None = None
    # Its worktree was made for it at the base, untouched since (``runner``).
    fresh_worktree: bool = False
    timed_out: bool = False  # its task's time limit was reached (``runner``'s watchdog)
    files_changed: frozenset[str] = frozenset()  # what its result changed (``settler``)
    last_message: str = ""  # the CLI's last message (``InFlight.listener``)
    group: str | None = None  # a council candidate: the council task it is a candidate of
    # The council step of a council task (compare, merge the winner): set by ``dispatcher``.
    picking: bool = False
    # Someone asked for the task to be cancelled (``request_cancel``: ``reconciler``, the
    # council's ``members``).
    cancel_requested: bool = False
    # Its worktree was deleted under it: seen by ``reconciler``.
    worktree_gone: bool = False
    # The session's locks were released (``writes.release_locks``, once is enough): a fact of
    # its own, not a stage: a lost attempt's locks are released too.
    locks_released: bool = False
    # Records of its end a part handed to the landing (``AttemptPart.leaving``) that the
    # landing deleted, by (namespace, key): the part's ``ended`` needs not delete them.
    forgotten: set[tuple[str, str]] = field(default_factory=set)
    written: TaskState | None = None  # the task as this attempt's last fenced write left it
    waiting: str = ""  # what its landing waits for now (``lander``, ``council.step``)
    waiting_written: str = ""  # ... as last written into the task's metadata (``lander``)
    usage: Usage | None = None  # the attempt's usage, not yet added to the task's total
    note: str | None = None  # why the task's last attempt changed nothing (its build is told)
    # The task's phase records as its claim found them: its workflow starts from them, with
    # no read of its own (nobody else writes them while the claim is held).
    phases: dict[str, PhaseRecord] | None = None
    feedback: str | None = None  # its pull request's feedback, which this build answers
    # The other sessions' files, read in its worktree's fork call for its first prompt
    busy_read: BusyRead | None = None
    # Lands a vanished landing again from its kept branch (no CLI): made so by ``relander``.
    relanding: bool = False
    # Its work held a secret when it was to be pushed (``team.work``): stopped, failed, kept.
    secret: SecretInHistory | None = None
    cancel: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)
    # Where it is in its life (``lifecycle``): every change of stage goes through ``move``.
    life: Lifecycle = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.life = Lifecycle(self.task.id)

    # -- its lifecycle ----------------------------------------------------------------------

    @property
    def stage(self) -> Stage:
        return self.life.stage

    def move(self, to: Stage) -> None:
        """Move to stage ``to`` (``Lifecycle.move``: ``IllegalMove`` if not allowed)."""
        self.life.move(to)

    def lose(self) -> None:
        """The claim lapsed: the attempt writes nothing more (the sweeper owns the task)."""
        self.life.move(Stage.LOST)

    def finish(self) -> None:
        """Its coroutine is over: one that never held a claim ends ``ENDED`` (one that held
        one was released or lost on the way); whoever waits for it goes on."""
        if self.life.progress is Stage.CLAIMING and not self.token:
            self.life.move(Stage.ENDED)
        self.finished.set()

    @property
    def lost(self) -> bool:
        """The claim lapsed: this attempt may not write any more."""
        return self.life.stage is Stage.LOST

    @property
    def releasing(self) -> bool:
        """Its claim is being released: a renewal failing now is no loss."""
        return self.life.progress is Stage.RELEASING

    @property
    def slot_free(self) -> bool:
        """The CLI work is over and its slot given back; the attempt is settling or merging."""
        return self.life.passed(Stage.SETTLING)

    @property
    def landed(self) -> bool:
        """Merged into the base: its branch may be deleted at any moment."""
        return self.life.passed(Stage.LANDED)

    @property
    def merging_written(self) -> bool:
        """The task was written ``merging`` (its merge had to wait)."""
        return self.life.passed(Stage.MERGING)

    # -- what it is -------------------------------------------------------------------------

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
