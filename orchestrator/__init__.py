"""CLI Council: run several AI coding CLIs in parallel on one git repository, losing nothing.

The Python API is what this package exports (``__all__``; a test keeps it honest)::

    import anyio
    from orchestrator import Council, load_config

    async def main() -> None:
        async with Council(load_config("configs/demo.yaml")) as council:
            council.subscribe(print)            # every Event as it happens
            report = await council.run()        # a RunReport: per task and in total
        print(report.totals)

    anyio.run(main)

Events are typed: one pydantic model per event type (``TaskDispatched``, ``MergeCompleted``,
...; every one an ``Event``, each about one task a ``TaskEvent`` with ``task_id``), and
``council.events()`` yields them for ``async for`` while the run goes on (``Council``'s
module doc; ``docs/python-api.md``).

Errors are one tree under ``CouncilError`` (``orchestrator.errors`` draws it); the state store
is the ``StateStore`` protocol, ``FileStateStore`` its embedded backend. Adapter authors
import the contract from ``orchestrator.adapter`` and the hooks from
``orchestrator.plugins.hookspecs``. Names are loaded on first use, so importing one part of
the package does not import all of it. Each is written once, in ``_NAMES`` below; type
checkers read ``__init__.pyi``, written from it (``orchestrator.lazy_stubs``).
"""

from __future__ import annotations

import logging

from orchestrator import lazy_names

# A library says nothing unless asked: without a handler of its own, a warning would reach
# Python's last-resort handler and print on stderr. The `council` command sets up its own.
logging.getLogger(__name__).addHandler(logging.NullHandler())

# the module that defines them -> the names exported (each name once; __all__ is all of them)
_NAMES: dict[str, tuple[str, ...]] = {
    "orchestrator.council": (
        "Council",
        "LiveSession",
    ),
    "orchestrator.config.load": (
        "load_config",
        "parse_config",
    ),
    "orchestrator.config.run": ("RunConfig",),
    "orchestrator.config.task": ("TaskConfig",),
    "orchestrator.run.reports.report": (
        "RunReport",
        "TaskReport",
    ),
    "orchestrator.models": (
        "SessionStatus",
        "TaskState",
        "TaskStatus",
    ),
    "orchestrator.state.protocol": ("StateStore",),
    "orchestrator.state.file.store": ("FileStateStore",),
    # the error tree under CouncilError
    "orchestrator.errors": (
        "AdapterError",
        "AdapterUnavailable",
        "BaseLocked",
        "CancelError",
        "ConfigError",
        "ConfigIssue",
        "CouncilError",
        "CredentialInWork",
        "DeadlockError",
        "ForgeAuthError",
        "ForgeError",
        "ForgeNotFound",
        "ForgeRefused",
        "ForgeUnavailable",
        "GitError",
        "InvalidIdError",
        "LockError",
        "LockTimeout",
        "LockUnusable",
        "MergeContention",
        "NothingToResume",
        "OutOfSpace",
        "PathEscapeError",
        "PlanRefused",
        "PluginError",
        "RecordNotFound",
        "RecordRejected",
        "RemotePushRefused",
        "RequeueError",
        "RunError",
        "RunLocked",
        "SecretInHistory",
        "SecretInWork",
        "SecretScanLate",
        "StaleClaim",
        "StateCorrupted",
        "StateError",
        "StateWriteError",
        "StoreUnavailable",
        "TaskInActiveSession",
        "UnusableRepository",
        "UsageError",
        "VersionConflict",
        "WorkflowError",
        "WorkspaceError",
        "WorktreeBusy",
    ),
    # the events: one model per event type, and reading them back
    "orchestrator.events": (
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
        "ServiceNotReady",
        "ServiceReady",
        "ServiceStopped",
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
    ),
}

__all__, __getattr__, __dir__ = lazy_names.exports(__name__, _NAMES)
