"""The adapter contract: how CLI Council talks to one AI coding CLI (see ``contract``).

Everything a plugin author implements or returns is importable from here: ``Adapter`` and its
values (``AdapterRequest``, ``CommandSpec``, ``AgentEvent``, ``Outcome``, ...), and
``Credential`` for where a CLI keeps its login. Adapters are pure: building a command, parsing
a line and classifying a run need no process, no git and no store.
"""

from orchestrator.adapter.contract import Adapter, native_id
from orchestrator.adapter.logins import AWS_PROFILES, GCLOUD_ADC, Credential
from orchestrator.adapter.values import (
    AdapterCheck,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    Outcome,
    OutcomeKind,
    ProcessResult,
    Stream,
    Usage,
)

__all__ = [
    "AWS_PROFILES",
    "GCLOUD_ADC",
    "Adapter",
    "AdapterCheck",
    "AdapterConfig",
    "AdapterRequest",
    "AgentEvent",
    "CommandSpec",
    "Credential",
    "EventKind",
    "Outcome",
    "OutcomeKind",
    "ProcessResult",
    "Stream",
    "Usage",
    "native_id",
]
