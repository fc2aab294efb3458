"""Orchestrator events: what happened, when, with a small typed payload.

Events are the audit trail (``events.jsonl``) and the feed for in-process subscribers (the live
table, plugins, Python callers: ``Council.subscribe`` and ``Council.events``). They describe;
they are never the source of truth, which is the state store's records.

One model per event type (``EventType``), one module per family: ``state`` (records,
sessions, checkpoints, claims), ``locks``, ``merge``, ``runs``, ``tasks``, ``council_mode``,
``phases`` (a phase and its CLI), ``worktrees``, ``radar`` (collisions), ``issues`` (issues
as tasks), and ``dropped`` (an iterator's own marker).
Every model is an ``Event`` (``base``: ``type``, ``ts``, ``level``, and ``data`` as a dict
view), so a subscriber written for the untyped ``Event`` keeps working; an event about one
task is a ``TaskEvent`` and has ``task_id``. ``catalogue`` maps each type to its model and
reads a log line back (``parse_event``).

Only ``base`` and ``kinds`` load with this package; a family loads when one of its names is
first used (what every emitter imports is its own family's module).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from orchestrator.events.base import Event, Subscriber, TaskEvent, TypedEvent
from orchestrator.events.kinds import EventType

if TYPE_CHECKING:
    from orchestrator.events.catalogue import (
        AnyEvent,
        parse_event,
        read_event,
        typed_event,
    )
    from orchestrator.events.council_mode import (
        CouncilCandidateReady,
        CouncilComparing,
        CouncilWinner,
    )
    from orchestrator.events.dropped import (
        EventsDropped,
    )
    from orchestrator.events.issues import (
        ForgeCallFailed,
        IssueSkipped,
        IssuesRead,
        IssueWithdrawn,
    )
    from orchestrator.events.locks import (
        LockAcquired,
        LockCleaned,
        LockDeadlock,
        LockReleased,
        LockWaiting,
    )
    from orchestrator.events.merge import (
        BaseMovedOutside,
        MergeAlreadyMerged,
        MergeCompleted,
        MergeConflict,
        MergeFailed,
        MergeFenced,
        MergeForecastConflict,
        MergeResolveRound,
        MergeStarted,
        MergeVanished,
        MergeWaiting,
    )
    from orchestrator.events.phases import (
        CliOrphansLeft,
        CliOrphansStopped,
        CliSurvivorsStopped,
        PhaseCompleted,
        PhaseEvent,
        PhaseFailed,
        PhaseLeftoversKept,
        PhaseResumeRefused,
        PhaseSentBack,
        PhaseStarted,
        PhaseStopped,
        VerifyDiscarded,
    )
    from orchestrator.events.radar import (
        RadarCollision,
        RadarResolved,
    )
    from orchestrator.events.runs import (
        RunFinished,
        RunInterrupted,
        RunJoined,
        RunLeft,
        RunResumed,
        RunStarted,
    )
    from orchestrator.events.state import (
        CheckpointCreated,
        CheckpointRestored,
        ClaimAcquired,
        ClaimExpired,
        ClaimReleased,
        ClaimRenewed,
        LegacyImported,
        SessionCreated,
        SessionRecovered,
        SessionRemoved,
        SessionUpdated,
        StateQuarantined,
        StateRecordLarge,
        StateRecovered,
        StateResync,
        StateUpdated,
    )
    from orchestrator.events.tasks import (
        AdapterParked,
        TaskAlreadyMerged,
        TaskCancelled,
        TaskCancelRequested,
        TaskCancelTooLate,
        TaskClaimLost,
        TaskDispatched,
        TaskFailed,
        TaskPublishFailed,
        TaskRecordRecreated,
        TaskRejected,
        TaskRequeued,
        TaskRetry,
        TaskSelfFenced,
        TaskSubmitted,
        TaskSwept,
        TaskTakenOver,
        TaskTakeoverRefused,
        TaskWorktreeLost,
    )
    from orchestrator.events.worktrees import (
        WorktreeCreated,
        WorktreeFinished,
        WorktreeRecreated,
        WorktreeRemoved,
        WorktreeRescued,
    )

# name -> the module of this package that defines it (the ones loaded on first use)
_WHERE: dict[str, str] = {
    "AdapterParked": "tasks",
    "AnyEvent": "catalogue",
    "CheckpointCreated": "state",
    "CheckpointRestored": "state",
    "ClaimAcquired": "state",
    "ClaimExpired": "state",
    "ClaimReleased": "state",
    "ClaimRenewed": "state",
    "CliOrphansLeft": "phases",
    "CliOrphansStopped": "phases",
    "CliSurvivorsStopped": "phases",
    "CouncilCandidateReady": "council_mode",
    "CouncilComparing": "council_mode",
    "CouncilWinner": "council_mode",
    "EventsDropped": "dropped",
    "ForgeCallFailed": "issues",
    "IssueSkipped": "issues",
    "IssueWithdrawn": "issues",
    "IssuesRead": "issues",
    "LegacyImported": "state",
    "LockAcquired": "locks",
    "LockCleaned": "locks",
    "LockDeadlock": "locks",
    "LockReleased": "locks",
    "LockWaiting": "locks",
    "BaseMovedOutside": "merge",
    "MergeAlreadyMerged": "merge",
    "MergeCompleted": "merge",
    "MergeConflict": "merge",
    "MergeFailed": "merge",
    "MergeFenced": "merge",
    "MergeForecastConflict": "merge",
    "MergeResolveRound": "merge",
    "MergeStarted": "merge",
    "MergeVanished": "merge",
    "MergeWaiting": "merge",
    "PhaseCompleted": "phases",
    "PhaseEvent": "phases",
    "PhaseFailed": "phases",
    "PhaseLeftoversKept": "phases",
    "PhaseResumeRefused": "phases",
    "PhaseSentBack": "phases",
    "PhaseStarted": "phases",
    "PhaseStopped": "phases",
    "RadarCollision": "radar",
    "RadarResolved": "radar",
    "RunFinished": "runs",
    "RunInterrupted": "runs",
    "RunJoined": "runs",
    "RunLeft": "runs",
    "RunResumed": "runs",
    "RunStarted": "runs",
    "SessionCreated": "state",
    "SessionRecovered": "state",
    "SessionRemoved": "state",
    "SessionUpdated": "state",
    "StateQuarantined": "state",
    "StateRecordLarge": "state",
    "StateRecovered": "state",
    "StateResync": "state",
    "StateUpdated": "state",
    "TaskAlreadyMerged": "tasks",
    "TaskCancelRequested": "tasks",
    "TaskCancelTooLate": "tasks",
    "TaskCancelled": "tasks",
    "TaskClaimLost": "tasks",
    "TaskDispatched": "tasks",
    "TaskFailed": "tasks",
    "TaskPublishFailed": "tasks",
    "TaskRecordRecreated": "tasks",
    "TaskRejected": "tasks",
    "TaskRequeued": "tasks",
    "TaskRetry": "tasks",
    "TaskSelfFenced": "tasks",
    "TaskSubmitted": "tasks",
    "TaskSwept": "tasks",
    "TaskTakenOver": "tasks",
    "TaskTakeoverRefused": "tasks",
    "TaskWorktreeLost": "tasks",
    "VerifyDiscarded": "phases",
    "WorktreeCreated": "worktrees",
    "WorktreeFinished": "worktrees",
    "WorktreeRecreated": "worktrees",
    "WorktreeRemoved": "worktrees",
    "WorktreeRescued": "worktrees",
    "parse_event": "catalogue",
    "read_event": "catalogue",
    "typed_event": "catalogue",
}

__all__ = [
    "AdapterParked",
    "AnyEvent",
    "BaseMovedOutside",
    "CheckpointCreated",
    "CheckpointRestored",
    "ClaimAcquired",
    "ClaimExpired",
    "ClaimReleased",
    "ClaimRenewed",
    "CliOrphansLeft",
    "CliOrphansStopped",
    "CliSurvivorsStopped",
    "CouncilCandidateReady",
    "CouncilComparing",
    "CouncilWinner",
    "Event",
    "EventType",
    "EventsDropped",
    "ForgeCallFailed",
    "IssueSkipped",
    "IssueWithdrawn",
    "IssuesRead",
    "LegacyImported",
    "LockAcquired",
    "LockCleaned",
    "LockDeadlock",
    "LockReleased",
    "LockWaiting",
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
    "PhaseCompleted",
    "PhaseEvent",
    "PhaseFailed",
    "PhaseLeftoversKept",
    "PhaseResumeRefused",
    "PhaseSentBack",
    "PhaseStarted",
    "PhaseStopped",
    "RadarCollision",
    "RadarResolved",
    "RunFinished",
    "RunInterrupted",
    "RunJoined",
    "RunLeft",
    "RunResumed",
    "RunStarted",
    "SessionCreated",
    "SessionRecovered",
    "SessionRemoved",
    "SessionUpdated",
    "StateQuarantined",
    "StateRecordLarge",
    "StateRecovered",
    "StateResync",
    "StateUpdated",
    "Subscriber",
    "TaskAlreadyMerged",
    "TaskCancelRequested",
    "TaskCancelTooLate",
    "TaskCancelled",
    "TaskClaimLost",
    "TaskDispatched",
    "TaskEvent",
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
    "TaskWorktreeLost",
    "TypedEvent",
    "VerifyDiscarded",
    "WorktreeCreated",
    "WorktreeFinished",
    "WorktreeRecreated",
    "WorktreeRemoved",
    "WorktreeRescued",
    "parse_event",
    "read_event",
    "typed_event",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'orchestrator.events' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"orchestrator.events.{where}"), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
