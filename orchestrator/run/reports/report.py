"""What a run reports: per task and in total, built from the state store's records alone.

``build_report(session, tasks)`` (``build_report``) is a pure function of a ``SessionRecord`` and
its ``TaskState``s, so a report of a run in progress, a finished one, or one read back by ``council
status`` from another process are the same thing. Tokens and cost are summed from what the CLIs
reported (``metadata.usage``); a CLI that reports nothing leaves them ``None``.

A council task (best of N) also lists its ``candidates`` (adapter, status, branch, which one
was chosen); its ``adapter`` and ``branch`` are the winner's.

``RunReport.exit_code`` is the ``council`` command's: 0 every task done, 130 the run was
interrupted (but 1 when some task ended ``waiting_for_checkout`` or waits ``in_review`` on a
person: the run ended by itself),
1 anything else.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, ConfigDict

from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.services.records import ServiceState
from orchestrator.spend.line import SpendLine

__all__ = [
    "CandidateReport",
    "CollisionReport",
    "PullReport",
    "RunReport",
    "RunTotals",
    "StackLink",
    "StackReport",
    "TaskReport",
    "VanishedReport",
    "WorkstationReport",
]


class _Report(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CandidateReport(_Report):
    """One candidate of a council task."""

    task_id: str
    adapter: str
    status: str
    branch: str | None = None
    chosen: bool = False
    error: str | None = None


class VanishedReport(_Report):
    """A landing of the task that vanished from the base (``scheduler.attempts.relander``):
    the landing ``commit``, the base's tip when that was seen (None: the branch was gone),
    where they part, the first-parent commits that replaced it (``<sha> <subject>``), and
    ``action``: ``reland`` (landed again), ``report`` or ``lost`` (not landed again)."""

    commit: str
    base: str | None = None
    merge_base: str | None = None
    replaced_by: list[str] = []
    action: str
    seen_at: datetime | None = None


class StackLink(_Report):
    """A pull request of a stack: its task and number (None: not open yet)."""

    task_id: str
    number: int | None = None


class StackReport(_Report):
    """A task's place in a stack of pull requests (``landing.pulls: stacked``): ``place`` 1
    on the base, 2 on a pull request of place 1...; the pull requests ``below`` it (what it
    stands on) and ``above`` it (what stands on it)."""

    place: int
    below: list[StackLink] = []
    above: list[StackLink] = []


class PullReport(_Report):
    """The task's pull request (``landing.via: pull_request``) as the run last saw it:
    ``state`` open, merged or closed; ``checks`` success, failure, pending, none, ignored or
    unknown (not looked at yet); ``waiting`` what it waits for; ``human`` it waits on a
    person."""

    number: int
    url: str
    state: str
    approvals: int = 0
    checks: str = "unknown"
    round: int = 0
    waiting: str = ""
    human: bool = False
    stack: StackReport | None = None  # its place in a stack of pull requests


class TaskReport(_Report):
    task_id: str
    status: TaskStatus
    phases: dict[str, str]  # phase -> pending | running | completed | failed | skipped
    current_phase: str | None = None
    adapter: str | None = None
    attempts: int = 0
    branch: str | None = None
    merged_commit: str | None = None
    error: str | None = None
    outcome: str | None = None  # why a failed task failed: rate_limited, auth_required...
    parked_until: datetime | None = None  # while parked: when its rate limit should lift
    parked_adapter: str | None = None  # while parked: the adapter it waits for
    parks: int = 0  # how many times it was parked on a rate limit
    conflicts: list[str] = []
    started_at: datetime | None = None
    finished_at: datetime | None = None
    duration_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    candidates: list[CandidateReport] = []
    waiting: str | None = None  # why an unfinished task waits: ``after add-cli``, a park...
    # While its next CLI call is held (queued): by a quota until ``held_until`` (its reset),
    # or by a budget (``budget: ...``, until raised) (``scheduler.spending``).
    held: str | None = None
    held_until: datetime | None = None
    holder: str | None = None  # who holds (or last held) its claim: ``<host>:<pid>:<run>``
    lease_expires: datetime | None = None  # while its claim is held: when it lapses
    vanished: list[VanishedReport] = []  # its landings that vanished from the base, oldest first
    pull: PullReport | None = None  # its pull request, when it lands through one
    # The collision radar's mark while its live session overlaps another's:
    # ``collides with add-cli on README.md (hunks)`` (``radar.warning.marks``).
    collision: str | None = None
    # Its session's services (a run's ``services:``) as last recorded: name, state (starting,
    # ready, failed, stopped), port, a failure's reason (``services.records``).
    services: list[ServiceState] = []


class CollisionReport(_Report):
    """Two live sessions changing the same files (``radar.records.Collision``): ``severity``
    ``file`` (other lines), ``hunks`` (the same lines) or ``conflict`` (their tips' merge
    conflicts, on ``conflict_paths``)."""

    tasks: list[str]
    paths: list[str]
    severity: str
    conflict_paths: list[str] = []
    workstations: list[str] = []
    first_seen: datetime | None = None


class WorkstationReport(_Report):
    """A workstation working in a team run now (its presence record)."""

    workstation: str
    host: str
    pid: int
    since: datetime | None = None
    last_seen: datetime
    running: int = 0  # attempts it runs


class RunTotals(_Report):
    tasks: int
    done: int
    failed: int
    conflict: int
    cancelled: int
    pending: int  # queued, parked, running, merging or waiting_for_checkout
    waiting_for_checkout: int = 0  # ended waiting for the base's checkout: `council resume`
    in_review: int = 0  # pull requests open, waiting to be merged
    held: int = 0  # queued, waiting for a budget to be raised (``scheduler.spending``)
    # Of ``tasks``, those the session lists with no record yet (in ``tasks`` as queued):
    # being recorded as the run starts, or left so by a stop then
    # (``scheduler.session.recording``); `council resume` records them.
    unrecorded: int = 0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    duration_seconds: float | None = None


class RunReport(_Report):
    session_id: str
    status: SessionStatus
    tasks: list[TaskReport]
    totals: RunTotals
    team: str | None = None  # the team run this session is, if several workstations share it
    workstations: list[WorkstationReport] = []  # team mode: the workstations alive in it
    spend: SpendLine | None = None  # what its CLI calls cost so far, against its budgets
    collisions: list[CollisionReport] = []  # the live sessions that overlap (collision radar)

    @property
    def exit_code(self) -> int:
        ended_by_itself = (
            self.totals.waiting_for_checkout
            or self.totals.in_review
            or self.totals.held
            or (self.spend is not None and self.spend.held)  # a budget stopped it
        )
        if self.status == SessionStatus.INTERRUPTED and not ended_by_itself:
            return 130
        return 0 if self.totals.done == self.totals.tasks else 1

    def task(self, task_id: str) -> TaskReport:
        return next(t for t in self.tasks if t.task_id == task_id)
