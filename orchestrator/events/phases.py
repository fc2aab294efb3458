"""One phase of one attempt, and the CLI it runs: lifecycle, output, what was kept or
stopped."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Literal

from pydantic import model_validator

from orchestrator.events.base import TaskEvent, TypedEvent

__all__ = [
    "CliOrphansLeft",
    "CliOrphansStopped",
    "CliSurvivorsStopped",
    "PhaseCompleted",
    "PhaseEvent",
    "PhaseFailed",
    "PhaseLeftoversKept",
    "PhaseResumeRefused",
    "PhaseSentBack",
    "PhaseStarted",
    "PhaseStopped",
    "VerifyDiscarded",
]

# Before typed events these named their task ``task``; old log lines still read.
_OLD_NAMES: Mapping[str, str] = {"task": "task_id"}


class _PhaseScoped(TaskEvent):
    renamed: ClassVar[Mapping[str, str]] = _OLD_NAMES
    phase: str


class _PhaseLifecycle(_PhaseScoped):
    adapter: str | None = None
    session: str | None = None  # the worktree session the phase runs in
    status: str
    attempt: int
    outcome: str | None = None
    round: int | None = None  # the review round it runs in (build and review repeat)


class PhaseStarted(_PhaseLifecycle):
    type: Literal["phase.started"] = "phase.started"


class PhaseCompleted(_PhaseLifecycle):
    type: Literal["phase.completed"] = "phase.completed"


class PhaseFailed(_PhaseLifecycle):
    type: Literal["phase.failed"] = "phase.failed"
    level: str = "warning"
    error: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _asked_for(cls, data: Any) -> Any:
        # Logs of older versions say a stopped phase (now ``phase.stopped``) failed "cancelled":
        # what the user asked for, no warning.
        if isinstance(data, dict) and data.get("outcome") == "cancelled" and "level" not in data:
            return {**data, "level": "info"}
        return data


class PhaseStopped(_PhaseLifecycle):
    """The phase was cut short by what the user asked for (a stop, a kill, a cancel request):
    not a failure, and no attempt counted for it; the next attempt goes on from it."""

    type: Literal["phase.stopped"] = "phase.stopped"
    error: str | None = None


class PhaseSentBack(_PhaseLifecycle):
    """Review sent the work back: the phase is due again (in ``round``)."""

    type: Literal["phase.sent_back"] = "phase.sent_back"


class PhaseEvent(_PhaseScoped):
    """One line of the CLI's output as its adapter parsed it (``kind``: message, tool_call,
    ...); handed to subscribers as it happens, not written to the log."""

    type: Literal["phase.event"] = "phase.event"
    adapter: str
    kind: str
    text: str
    tool: str | None = None


class PhaseResumeRefused(_PhaseScoped):
    """The CLI would not continue ``refused_session``: the phase started afresh."""

    type: Literal["phase.resume_refused"] = "phase.resume_refused"
    level: str = "warning"
    adapter: str
    refused_session: str


class PhaseLeftoversKept(_PhaseScoped):
    """A phase cut off before: what it left is kept on ``ref`` (at ``tip``)."""

    type: Literal["phase.leftovers_kept"] = "phase.leftovers_kept"
    level: str = "warning"
    ref: str
    tip: str


class VerifyDiscarded(TaskEvent):
    """Files the verify commands left behind, not committed."""

    type: Literal["verify.discarded"] = "verify.discarded"
    renamed: ClassVar[Mapping[str, str]] = _OLD_NAMES
    paths: list[str]


class CliSurvivorsStopped(TypedEvent):
    """Processes a CLI left running after it exited, stopped; ``task_id`` and ``phase`` when
    one phase's CLI left them (at a run's end, the daemons it adopted)."""

    type: Literal["cli.survivors_stopped"] = "cli.survivors_stopped"
    renamed: ClassVar[Mapping[str, str]] = _OLD_NAMES
    level: str = "warning"
    task_id: str | None = None
    phase: str | None = None
    processes: list[str]


class CliOrphansStopped(TypedEvent):
    """Processes a dead orchestrator left, stopped: each ``{"pid", "group", "task"}``."""

    type: Literal["cli.orphans_stopped"] = "cli.orphans_stopped"
    level: str = "warning"
    orphans: list[dict[str, Any]]


class CliOrphansLeft(TypedEvent):
    type: Literal["cli.orphans_left"] = "cli.orphans_left"
    level: str = "warning"
    error: str
