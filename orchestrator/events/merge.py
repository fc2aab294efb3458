"""The merge queue's events, and the scheduler's decisions about landing a task."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from orchestrator.events.base import Event, TaskEvent

__all__ = [
    "BaseMovedOutside",
    "MergeAlreadyMerged",
    "MergeCompleted",
    "MergeConflict",
    "MergeFailed",
    "MergeFenced",
    "MergeForecastConflict",
    "MergeResolveRound",
    "MergeStarted",
    "MergeVanished",
    "MergeWaiting",
]


class MergeStarted(TaskEvent):
    type: Literal["merge.started"] = "merge.started"
    session_id: str
    branch: str
    base_branch: str


class _MergeResult(TaskEvent):
    """What one landing came to (``merge.types.MergeResult``)."""

    status: str
    session_id: str
    branch: str
    base_branch: str
    branch_tip: str
    base_before: str
    base_after: str
    merge_commit: str | None = None
    tip_contained: bool = False
    attempts: int = 1
    git_calls: int = 0
    timings: dict[str, float] = Field(default_factory=dict)
    conflicts: list[str] = Field(default_factory=list)
    message: str | None = None
    details: list[str] = Field(default_factory=list)
    checkout: str | None = None
    pushed_to: str | None = None
    local_behind: bool | None = None


class MergeCompleted(_MergeResult):
    type: Literal["merge.completed"] = "merge.completed"


class MergeAlreadyMerged(_MergeResult):
    type: Literal["merge.already_merged"] = "merge.already_merged"


class MergeConflict(_MergeResult):
    type: Literal["merge.conflict"] = "merge.conflict"


class MergeWaiting(_MergeResult):
    """The base's checkout is dirty: the landing waits for it (``message`` says why)."""

    type: Literal["merge.waiting"] = "merge.waiting"
    level: str = "warning"


class MergeFailed(TaskEvent):
    type: Literal["merge.failed"] = "merge.failed"
    level: str = "warning"
    session_id: str
    branch: str
    error: str


class MergeForecastConflict(TaskEvent):
    """The task waits to land until ``held_for`` has: both change ``paths``."""

    type: Literal["merge.forecast_conflict"] = "merge.forecast_conflict"
    level: str = "warning"
    held_for: str
    paths: list[str]


class MergeResolveRound(TaskEvent):
    """The task conflicts with the base: built again on it (``kept_branch`` kept)."""

    type: Literal["merge.resolve_round"] = "merge.resolve_round"
    level: str = "warning"
    paths: list[str]
    kept_branch: str
    round: int


class MergeFenced(TaskEvent):
    """Not landed: the task's claim (``token``) no longer holds."""

    type: Literal["merge.fenced"] = "merge.fenced"
    level: str = "warning"
    token: int
    base: str


class MergeVanished(TaskEvent):
    """A task recorded ``done`` is no longer landed: no first-parent commit of the base
    carries its ``Council-Task`` trailer (nor does the base contain ``commit``, the landing
    recorded). ``base`` is the base's tip now (None: the branch is gone), ``merge_base`` where
    it parts from the landing, ``replaced_by`` the first-parent commits of the base since then
    (``<sha> <subject>``, newest first, at most 20). ``action``: ``reland`` (it goes through the
    merge queue again from ``kept_branch``), ``report`` (``landing.relanding: report``) or
    ``lost`` (no kept branch left to land it from)."""

    type: Literal["merge.vanished"] = "merge.vanished"
    level: str = "warning"
    commit: str
    base_branch: str
    base: str | None = None
    merge_base: str | None = None
    replaced_by: list[str] = Field(default_factory=list)
    kept_branch: str | None = None
    action: Literal["reland", "report", "lost"]


class BaseMovedOutside(Event):
    """The base gained ``commit`` (``subject``) that no merge queue landed: pushed by hand, or by
    a CLI that reached the remote (``remote``; None: the local base). It stays, and no task
    counts it as landed; a task whose own branch brought it fails (its work skipped the
    queue's checks)."""

    type: Literal["merge.outside"] = "merge.outside"
    level: str = "warning"
    base_branch: str
    remote: str | None = None
    commit: str
    subject: str = ""
