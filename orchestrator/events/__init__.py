"""Orchestrator events: what happened, when, with a small typed payload.

Events are the audit trail (``events.jsonl``) and the feed for in-process subscribers (the live
table, plugins, Python callers: ``Council.subscribe`` and ``Council.events``). They describe;
they are never the source of truth, which is the state store's records.

One model per event type (``EventType``), one module per family: ``state`` (records,
sessions, checkpoints, claims), ``locks``, ``merge``, ``runs``, ``tasks``, ``council_mode``,
``phases`` (a phase and its CLI), ``worktrees``, ``radar`` (collisions), ``services`` (a
session's services), ``issues`` (issues as tasks), and ``dropped`` (an iterator's own marker).
Every model is an ``Event`` (``base``: ``type``, ``ts``, ``level``, and ``data`` as a dict
view), so a subscriber written for the untyped ``Event`` keeps working; an event about one
task is a ``TaskEvent`` and has ``task_id``. ``catalogue`` maps each type to its model and
reads a log line back (``parse_event``).

Only ``base`` and ``kinds`` load with this package; a family loads when one of its names is
first used (what every emitter imports is its own family's module). Each name is written once,
in ``_NAMES`` below; type checkers read ``__init__.pyi``, written from it
(``orchestrator.lazy_stubs``).
"""

from __future__ import annotations

from orchestrator import lazy_names

# the module of this package that defines them -> the names exported
_NAMES: dict[str, tuple[str, ...]] = {
    "orchestrator.events.base": (
        "Event",
        "Subscriber",
        "TaskEvent",
        "TypedEvent",
    ),
    "orchestrator.events.kinds": ("EventType",),
    "orchestrator.events.catalogue": (
        "AnyEvent",
        "parse_event",
        "read_event",
        "typed_event",
    ),
    "orchestrator.events.council_mode": (
        "CouncilCandidateReady",
        "CouncilComparing",
        "CouncilWinner",
    ),
    "orchestrator.events.dropped": ("EventsDropped",),
    "orchestrator.events.issues": (
        "ForgeCallFailed",
        "IssueSkipped",
        "IssueWithdrawn",
        "IssuesRead",
    ),
    "orchestrator.events.locks": (
        "LockAcquired",
        "LockCleaned",
        "LockDeadlock",
        "LockReleased",
        "LockWaiting",
    ),
    "orchestrator.events.merge": (
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
    ),
    "orchestrator.events.phases": (
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
    ),
    "orchestrator.events.radar": (
        "RadarCollision",
        "RadarResolved",
    ),
    "orchestrator.events.services": (
        "ServiceNotReady",
        "ServiceReady",
        "ServiceStopped",
    ),
    "orchestrator.events.runs": (
        "RunFinished",
        "RunInterrupted",
        "RunJoined",
        "RunLeft",
        "RunResumed",
        "RunStarted",
    ),
    "orchestrator.events.state": (
        "CheckpointCreated",
        "CheckpointRestored",
        "ClaimAcquired",
        "ClaimExpired",
        "ClaimReleased",
        "ClaimRenewed",
        "LegacyImported",
        "SessionCreated",
        "SessionRecovered",
        "SessionRemoved",
        "SessionUpdated",
        "StateQuarantined",
        "StateRecordLarge",
        "StateRecovered",
        "StateResync",
        "StateUpdated",
    ),
    "orchestrator.events.tasks": (
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
        "TaskWorktreeLost",
    ),
    "orchestrator.events.worktrees": (
        "WorktreeCreated",
        "WorktreeFinished",
        "WorktreeRecreated",
        "WorktreeRemoved",
        "WorktreeRescued",
    ),
}

# base and kinds load with the package (every event needs them); a family on first use
__all__, __getattr__, __dir__ = lazy_names.exports(
    __name__, _NAMES, eager=("orchestrator.events.base", "orchestrator.events.kinds")
)
