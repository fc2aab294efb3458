"""What a Python user writes against the API, for mypy --strict to read (``test_public_api``
checks it; nothing runs it): every name comes from ``orchestrator``, ``orchestrator.events`` or
``orchestrator.state`` as an explicit re-export (the packages' ``__init__.pyi``), and a name
none of them exports is an error, never ``Any``."""

from __future__ import annotations

import orchestrator
from orchestrator import (
    ConfigError,
    Council,
    CouncilError,
    Event,
    RunConfig,
    RunReport,
    TaskDispatched,
    load_config,
    parse_event,
)
from orchestrator.events import EventType, Subscriber, TaskEvent
from orchestrator.state import FileStateStore, StateStore

ERRORS: tuple[type[CouncilError], ...] = (ConfigError, orchestrator.GitError)
EVENT_TYPES: tuple[type[Event], ...] = (TaskDispatched, TaskEvent, orchestrator.MergeCompleted)
LOADERS = (load_config, parse_event)
KINDS = (Council, RunConfig, RunReport, EventType, Subscriber, FileStateStore, StateStore)
EXPORTED: list[str] = orchestrator.__all__

# not exported: mypy must refuse them (an unused ignore would be an error of its own)
UNKNOWN = orchestrator.Councill  # type: ignore[attr-defined]
INTERNAL = orchestrator.lazy_names  # type: ignore[attr-defined]
