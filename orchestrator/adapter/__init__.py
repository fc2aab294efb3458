"""The adapter contract: how CLI Council talks to one AI coding CLI (see ``contract``).

Everything a plugin author implements or returns is importable from here: ``Adapter`` and its
values (``AdapterRequest``, ``CommandSpec``, ``AgentEvent``, ``Outcome``, ...), ``Credential``
for where a CLI keeps its login, ``UserFile`` and ``ConfigFile`` for its user's own
configuration, and ``too_long_for_argument`` for a prompt that must go in through stdin or a
file instead of the command line. Adapters are pure: building a command,
parsing a line and classifying a run need no process, no git and no store.
"""

from orchestrator.adapter.arg_limits import too_long_for_argument
from orchestrator.adapter.contract import Adapter, native_id
from orchestrator.adapter.extra_args import ExtraArgsConfig
from orchestrator.adapter.logins import AWS_PROFILES, GCLOUD_ADC, Credential
from orchestrator.adapter.user_files import ConfigFile, KeyPath, UserFile
from orchestrator.adapter.values import (
    AdapterCheck,
    AdapterConfig,
    AdapterRequest,
    AgentEvent,
    CommandSpec,
    EventKind,
    McpServer,
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
    "ConfigFile",
    "Credential",
    "EventKind",
    "ExtraArgsConfig",
    "KeyPath",
    "McpServer",
    "Outcome",
    "OutcomeKind",
    "ProcessResult",
    "Stream",
    "Usage",
    "UserFile",
    "native_id",
    "too_long_for_argument",
]
