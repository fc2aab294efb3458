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

Errors are one tree under ``CouncilError`` (``orchestrator.errors`` draws it); the state store
is the ``StateStore`` protocol, ``FileStateStore`` its embedded backend. Adapter authors
import the contract from ``orchestrator.adapter`` and the hooks from
``orchestrator.plugins.hookspecs``. Names are loaded on first use, so importing one part of
the package does not import all of it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from orchestrator.config.load import load_config, parse_config
    from orchestrator.config.run import RunConfig
    from orchestrator.config.task import TaskConfig
    from orchestrator.council import Council, LiveSession
    from orchestrator.errors import (
        AdapterError,
        AdapterUnavailable,
        BaseLocked,
        CancelError,
        ConfigError,
        ConfigIssue,
        CouncilError,
        DeadlockError,
        GitError,
        InvalidIdError,
        LockError,
        LockTimeout,
        LockUnusable,
        MergeContention,
        NothingToResume,
        OutOfSpace,
        PathEscapeError,
        PluginError,
        RecordNotFound,
        RemotePushRefused,
        RunError,
        RunLocked,
        SecretInWork,
        StaleClaim,
        StateCorrupted,
        StateError,
        StateWriteError,
        StoreUnavailable,
        TaskInActiveSession,
        UnusableRepository,
        UsageError,
        VersionConflict,
        WorkflowError,
        WorkspaceError,
        WorktreeBusy,
    )
    from orchestrator.events import Event, EventType, Subscriber
    from orchestrator.models import SessionStatus, TaskState, TaskStatus
    from orchestrator.run.report import RunReport, TaskReport
    from orchestrator.state.file.store import FileStateStore
    from orchestrator.state.protocol import StateStore

_ERRORS = [
    "AdapterError",
    "AdapterUnavailable",
    "BaseLocked",
    "CancelError",
    "ConfigError",
    "ConfigIssue",
    "CouncilError",
    "DeadlockError",
    "GitError",
    "InvalidIdError",
    "LockError",
    "LockTimeout",
    "LockUnusable",
    "MergeContention",
    "NothingToResume",
    "OutOfSpace",
    "PathEscapeError",
    "PluginError",
    "RecordNotFound",
    "RemotePushRefused",
    "RunError",
    "RunLocked",
    "SecretInWork",
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
]

# name -> the module that defines it
_WHERE: dict[str, str] = {
    "Council": "orchestrator.council",
    "LiveSession": "orchestrator.council",
    "load_config": "orchestrator.config.load",
    "parse_config": "orchestrator.config.load",
    "RunConfig": "orchestrator.config.run",
    "TaskConfig": "orchestrator.config.task",
    "RunReport": "orchestrator.run.report",
    "TaskReport": "orchestrator.run.report",
    "Event": "orchestrator.events",
    "EventType": "orchestrator.events",
    "Subscriber": "orchestrator.events",
    "TaskState": "orchestrator.models",
    "TaskStatus": "orchestrator.models",
    "SessionStatus": "orchestrator.models",
    "StateStore": "orchestrator.state.protocol",
    "FileStateStore": "orchestrator.state.file.store",
    **dict.fromkeys(_ERRORS, "orchestrator.errors"),
}

__all__ = [
    "AdapterError",
    "AdapterUnavailable",
    "BaseLocked",
    "CancelError",
    "ConfigError",
    "ConfigIssue",
    "Council",
    "CouncilError",
    "DeadlockError",
    "Event",
    "EventType",
    "FileStateStore",
    "GitError",
    "InvalidIdError",
    "LiveSession",
    "LockError",
    "LockTimeout",
    "LockUnusable",
    "MergeContention",
    "NothingToResume",
    "OutOfSpace",
    "PathEscapeError",
    "PluginError",
    "RecordNotFound",
    "RemotePushRefused",
    "RunConfig",
    "RunError",
    "RunLocked",
    "RunReport",
    "SecretInWork",
    "SessionStatus",
    "StaleClaim",
    "StateCorrupted",
    "StateError",
    "StateStore",
    "StateWriteError",
    "StoreUnavailable",
    "Subscriber",
    "TaskConfig",
    "TaskInActiveSession",
    "TaskReport",
    "TaskState",
    "TaskStatus",
    "UnusableRepository",
    "UsageError",
    "VersionConflict",
    "WorkflowError",
    "WorkspaceError",
    "WorktreeBusy",
    "load_config",
    "parse_config",
]


def __getattr__(name: str) -> Any:
    where = _WHERE.get(name)
    if where is None:
        raise AttributeError(f"module 'orchestrator' has no attribute {name!r}")
    value = getattr(importlib.import_module(where), name)
    globals()[name] = value  # once loaded, a plain attribute
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
