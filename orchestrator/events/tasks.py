"""A task's way through the scheduler: submitted, dispatched, retried, parked, cancelled,
failed, taken over, and what happens to its claim and worktree on the way."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TaskEvent, TypedEvent

__all__ = [
    "AdapterParked",
    "TaskAlreadyMerged",
    "TaskCancelRequested",
    "TaskCancelTooLate",
    "TaskCancelled",
    "TaskClaimLost",
    "TaskDispatched",
    "TaskFailed",
    "TaskPublishFailed",
    "TaskRecordRecreated",
    "TaskRejected",
    "TaskRequeued",
    "TaskRetry",
    "TaskSelfFenced",
    "TaskSubmitted",
    "TaskSwept",
    "TaskTakenOver",
    "TaskTakeoverRefused",
    "TaskWaitingForCheckout",
    "TaskWorktreeLost",
]


class TaskSubmitted(TypedEvent):
    """Tasks added to a running session (``Council.submit``)."""

    type: Literal["task.submitted"] = "task.submitted"
    task_ids: list[str]


class TaskRejected(TaskEvent):
    type: Literal["task.rejected"] = "task.rejected"
    error: str


class TaskDispatched(TaskEvent):
    """Attempt ``attempt`` started on ``adapter``, working on ``branch``."""

    type: Literal["task.dispatched"] = "task.dispatched"
    adapter: str
    attempt: int
    branch: str
    phase: str | None = None  # the phase it resumes at, if it does


class TaskRequeued(TaskEvent):
    """Back in the queue as it was (nothing counted against it)."""

    type: Literal["task.requeued"] = "task.requeued"
    reason: str


class TaskRetry(TaskEvent):
    """Failed ``failures`` times: tried again in ``delay`` seconds."""

    type: Literal["task.retry"] = "task.retry"
    delay: float
    failures: int | None = None
    error: str


class TaskFailed(TaskEvent):
    type: Literal["task.failed"] = "task.failed"
    error: str
    outcome: str | None = None  # why, when the CLI said: rate_limited, auth_required...


class TaskAlreadyMerged(TaskEvent):
    """The base already carries the task's ``Council-Task`` trailer in ``commit``."""

    type: Literal["task.already_merged"] = "task.already_merged"
    commit: str


class TaskCancelRequested(TaskEvent):
    type: Literal["task.cancel_requested"] = "task.cancel_requested"


class TaskCancelTooLate(TaskEvent):
    type: Literal["task.cancel_too_late"] = "task.cancel_too_late"
    status: str


class TaskCancelled(TaskEvent):
    """Cancelled on request; its work, if any, kept on ``branch``."""

    type: Literal["task.cancelled"] = "task.cancelled"
    branch: str | None = None


class TaskSwept(TaskEvent):
    """The claim of ``holder`` lapsed (no heartbeat): the task is ``status`` again."""

    type: Literal["task.swept"] = "task.swept"
    level: str = "warning"
    holder: str
    status: str


class TaskClaimLost(TaskEvent):
    type: Literal["task.claim_lost"] = "task.claim_lost"
    level: str = "warning"


class TaskSelfFenced(TaskEvent):
    """The claim was not renewed for ``silent`` seconds: the attempt stopped itself."""

    type: Literal["task.self_fenced"] = "task.self_fenced"
    level: str = "warning"
    silent: float


class TaskWorktreeLost(TaskEvent):
    type: Literal["task.worktree_lost"] = "task.worktree_lost"
    level: str = "warning"
    worktree: str


class TaskWaitingForCheckout(TaskEvent):
    """Its landing waited ``waited`` seconds (``landing.wait_timeout``) for the base's
    checkout, which ``message`` says what is in the way of and how to clear: the task ended
    ``waiting_for_checkout``, its work kept on ``branch``; `council resume` lands it."""

    type: Literal["task.waiting_for_checkout"] = "task.waiting_for_checkout"
    level: str = "warning"
    branch: str
    waited: float
    message: str


class TaskRecordRecreated(TaskEvent):
    type: Literal["task.record_recreated"] = "task.record_recreated"
    reason: str


class TaskPublishFailed(TaskEvent):
    type: Literal["task.publish_failed"] = "task.publish_failed"
    level: str = "warning"
    branch: str
    error: str


class TaskTakeoverRefused(TaskEvent):
    type: Literal["task.takeover_refused"] = "task.takeover_refused"
    level: str = "warning"
    branch: str
    error: str


class TaskTakenOver(TaskEvent):
    """Continued here from another workstation's ``branch`` (at ``tip``)."""

    type: Literal["task.taken_over"] = "task.taken_over"
    branch: str
    tip: str
    session: str


class AdapterParked(TaskEvent):
    """``adapter`` is rate limited until ``until``: the task waits (park ``park`` of
    ``max_parks``)."""

    type: Literal["adapter.parked"] = "adapter.parked"
    adapter: str
    until: str
    park: int
    max_parks: int
    message: str
