"""The records CLI Council keeps: tasks, their phases and claims, and run sessions.

Statuses are string enums with named sets (terminal, active, ...) so callers test membership in
a set rather than listing statuses by hand. ``version`` and ``updated_at`` belong to the state
store: it bumps and stamps them on every write, and ignores what a caller puts there.
"""

from __future__ import annotations

from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.id_fields import SafeId

__all__ = [
    "ACTIVE_SESSION_STATUSES",
    "ACTIVE_TASK_STATUSES",
    "DEFAULT_PHASES",
    "LIVE_CLAIM_STATUSES",
    "RESUMABLE_TASK_STATUSES",
    "TERMINAL_PHASE_STATUSES",
    "TERMINAL_SESSION_STATUSES",
    "TERMINAL_TASK_STATUSES",
    "Checkpoint",
    "CheckpointInfo",
    "Claim",
    "ClaimStatus",
    "Counter",
    "KeyedRecord",
    "PhaseRecord",
    "PhaseStatus",
    "SessionMetrics",
    "SessionRecord",
    "SessionSnapshot",
    "SessionStatus",
    "TaskState",
    "TaskStatus",
    "utcnow",
]

DEFAULT_PHASES: tuple[str, ...] = ("scout", "plan", "build", "review")


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC (every stored time is)."""
    return datetime.now(UTC)


def _no_ids() -> list[str]:
    """A new empty list: ``list`` itself as a default factory costs the first model built
    with it some 2 ms of CPU (pydantic reads each factory's signature; the builtin's is
    parsed from its text, by ``tokenize``, whose expressions compile on that first use)."""
    return []


class _Record(BaseModel):
    # Each model builds its validator on first use: a command that reads only tasks and
    # sessions (`council status`) does not pay for the rest.
    model_config = ConfigDict(extra="forbid", validate_assignment=False, defer_build=True)


class TaskStatus(StrEnum):
    QUEUED = "queued"  # waiting for a slot, its dependencies or its files
    RUNNING = "running"  # a CLI session holds a claim on it
    PARKED = "parked"  # its adapter hit a rate limit; resumes when the limit lifts
    MERGING = "merging"  # verified work waiting in, or going through, the merge queue
    DONE = "done"  # merged into the base branch
    FAILED = "failed"  # retries exhausted, or a failure that is never retried
    CANCELLED = "cancelled"
    CONFLICT = "conflict"  # the merge conflicted; the branch is kept for a resolve round
    # Ready to land, but the base's checkout kept it from landing for ``landing.wait_timeout``:
    # its work is on its branch (worktree kept); the run ends without it, `council resume` lands
    # it once the checkout is cleared.
    WAITING_FOR_CHECKOUT = "waiting_for_checkout"
    # Landing by pull request (``landing.via: pull_request``): its branch is on the remote and
    # one pull request is open for it; no claim, no slot, no worktree: the scheduler follows
    # the pull request until it is merged (``done``) or closed (``failed``).
    IN_REVIEW = "in_review"


TERMINAL_TASK_STATUSES = frozenset(
    {TaskStatus.DONE, TaskStatus.FAILED, TaskStatus.CANCELLED, TaskStatus.CONFLICT}
)
ACTIVE_TASK_STATUSES = frozenset({TaskStatus.RUNNING, TaskStatus.MERGING, TaskStatus.IN_REVIEW})
# Nobody works on these: a cancel writes them ``cancelled`` at once (an in-review task's pull
# request stays open; the scheduler stops following it).
RESUMABLE_TASK_STATUSES = frozenset(
    {TaskStatus.QUEUED, TaskStatus.PARKED, TaskStatus.WAITING_FOR_CHECKOUT, TaskStatus.IN_REVIEW}
)


class PhaseStatus(StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    COMPLETED = "completed"
    FAILED = "failed"
    SKIPPED = "skipped"


TERMINAL_PHASE_STATUSES = frozenset(
    {PhaseStatus.COMPLETED, PhaseStatus.FAILED, PhaseStatus.SKIPPED}
)


class PhaseRecord(_Record):
    """One phase (scout, plan, build, review, ...) of one task, as far as it got."""

    name: SafeId
    status: PhaseStatus = PhaseStatus.PENDING
    attempt: int = Field(default=0, ge=0)
    adapter: str | None = None
    native_session_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    outcome: str | None = None
    error: str | None = None
    result: dict[str, Any] = Field(default_factory=dict)
    handoff_sha256: str | None = None


class ClaimStatus(StrEnum):
    ACTIVE = "active"
    COMPLETED = "completed"
    ABANDONED = "abandoned"
    EXPIRED = "expired"  # swept after its lease lapsed


LIVE_CLAIM_STATUSES = frozenset({ClaimStatus.ACTIVE})


class Claim(_Record):
    """A lease on a task: who works on it, until when, and the fencing token of that right.

    Tokens only grow, across all tasks, so a holder whose lease lapsed and was re-granted to
    someone else carries a smaller token and every write it attempts is refused.
    """

    task_id: SafeId
    holder: str = Field(min_length=1, max_length=200)
    token: int = Field(ge=1)
    acquired_at: datetime
    renewed_at: datetime
    expires_at: datetime
    status: ClaimStatus = ClaimStatus.ACTIVE
    released_at: datetime | None = None

    def is_live(self, now: datetime | None = None) -> bool:
        """Active and not yet past its lease."""
        return self.status in LIVE_CLAIM_STATUSES and self.expires_at > (now or utcnow())


class TaskState(_Record):
    """Everything the store knows about one task."""

    task_id: SafeId
    version: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    session_id: SafeId | None = None
    status: TaskStatus = TaskStatus.QUEUED
    priority: int = 0
    attempt: int = Field(default=0, ge=0)
    adapter: str | None = None
    branch: str | None = None
    worktree: str | None = None
    current_phase: str | None = None
    phases: dict[str, PhaseRecord] = Field(default_factory=dict)
    claim: Claim | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None
    error: str | None = None
    merged_commit: str | None = None
    metadata: dict[str, Any] = Field(default_factory=dict)


class SessionStatus(StrEnum):
    ACTIVE = "active"
    INTERRUPTED = "interrupted"  # stopped by a signal or a crash; `council resume` continues it
    COMPLETED = "completed"
    FAILED = "failed"
    CANCELLED = "cancelled"


ACTIVE_SESSION_STATUSES = frozenset({SessionStatus.ACTIVE, SessionStatus.INTERRUPTED})
TERMINAL_SESSION_STATUSES = frozenset(
    {SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED}
)


class SessionMetrics(_Record):
    """Counts over a session's tasks, computed by the store from their states whenever the
    session is read (so they always follow the latest change of any of them)."""

    total: int = 0
    queued: int = 0
    completed: int = 0
    in_progress: int = 0
    failed: int = 0
    average_minutes: float | None = None


class SessionRecord(_Record):
    """One run: the tasks it was started with, its options and its live metrics."""

    session_id: SafeId
    version: int = Field(default=0, ge=0)
    created_at: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)
    status: SessionStatus = SessionStatus.ACTIVE
    options: dict[str, Any] = Field(default_factory=dict)
    task_ids: list[SafeId] = Field(default_factory=_no_ids)
    metrics: SessionMetrics = Field(default_factory=SessionMetrics)
    metadata: dict[str, Any] = Field(default_factory=dict)


class CheckpointInfo(_Record):
    checkpoint_id: SafeId
    session_id: SafeId
    reason: str
    created_at: datetime
    task_count: int


class Checkpoint(CheckpointInfo):
    """A session and all its task states, frozen at one moment."""

    session: SessionRecord
    tasks: list[TaskState]

    def info(self) -> CheckpointInfo:
        return CheckpointInfo.model_validate(self.model_dump(exclude={"session", "tasks"}))


class SessionSnapshot(_Record):
    """A session together with the states of all its tasks."""

    session: SessionRecord
    tasks: list[TaskState]


class Counter(_Record):
    """A store-wide sequence (fencing tokens); its value is its record version."""

    name: SafeId
    version: int = Field(default=0, ge=0)
    updated_at: datetime = Field(default_factory=utcnow)


class KeyedRecord(_Record):
    """A small versioned record of another layer (worktree ownership, file ownership, ...),
    stored under a namespace so each layer keeps its own keys."""

    namespace: SafeId
    key: SafeId
    version: int = Field(default=0, ge=0)
    updated_at: datetime = Field(default_factory=utcnow)
    data: dict[str, Any] = Field(default_factory=dict)
    # Past this moment the record reads as absent and upkeep removes it (``put_record``'s
    # ``ttl``); None: it lasts until deleted.
    expires_at: datetime | None = None
