"""The values adapters and the core hand each other: a request, a command to run, the events a
CLI's output means, how its process ended, and the outcome. All immutable, all refusing
unknown keys."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from orchestrator.adapter.user_files import ConfigFile

__all__ = [
    "AdapterCheck",
    "AdapterConfig",
    "AdapterRequest",
    "AgentEvent",
    "CommandSpec",
    "EventKind",
    "McpServer",
    "Outcome",
    "OutcomeKind",
    "ProcessResult",
    "Stream",
    "Usage",
]

Stream = Literal["stdout", "stderr"]


class _Value(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class AdapterConfig(_Value):
    """Base of every adapter's options model: unknown keys are refused."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use


class McpServer(_Value):
    """One MCP server of the run config's ``mcp_servers:``, which every CLI that takes MCP
    servers gets in its own format: a local command (stdio) or a URL (streamable HTTP)."""

    name: str
    command: str | None = None
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = Field(default_factory=dict)  # ``${NAME}`` already expanded
    url: str | None = None
    headers: Mapping[str, str] = Field(default_factory=dict)
    # Its tools may be called without asking, where the CLI would ask (nobody answers a
    # headless CLI): the council's own server (``council mcp``), never a run config's.
    trusted: bool = False


class AdapterRequest(_Value):
    """One CLI invocation the core wants: what to ask, where, as whom."""

    prompt: str
    workdir: Path
    home: Path  # the session's private HOME; XDG dirs and CODEX_HOME live below it
    model: str | None = None
    phase: str = "build"
    task_id: str = ""
    session_id: str = ""
    resume_session_id: str | None = None  # the CLI's own id of a conversation to continue
    env: Mapping[str, str] = Field(default_factory=dict)  # from the run config
    share_credentials: bool = True  # link the user's logins into ``home`` (else remove them)
    pass_env: tuple[str, ...] = ()  # more variables to pass as they are (the run config's)
    # Carry the user's own configuration of the CLI (``UserFile``) into ``home``
    # (``user_config: merge``), or nothing of it (``ignore``).
    user_config: bool = True
    # The HOME paths of the adapter's ``credentials`` the user has and this run shares: a
    # command may depend on a login being there (codex's ``requires_openai_auth``).
    logins: tuple[str, ...] = ()
    mcp_servers: tuple[McpServer, ...] = ()  # the run's, for a CLI that takes them


class CommandSpec(_Value):
    """What to run: the core spawns it, never through a shell."""

    argv: list[str]
    env: dict[str, str] = Field(default_factory=dict)  # added to the core's allow-listed env
    home_files: dict[str, str] = Field(default_factory=dict)  # HOME-relative path -> content
    # HOME-relative paths whose writes reach the CLI's stderr (a link to ``/dev/stderr``, made
    # in place of whatever is there): a CLI that says something only in a file of its own
    # (qwen's retries) says it where the runner reads, line by line, as it happens.
    stderr_files: list[str] = Field(default_factory=list)
    # HOME-relative path -> a config file merged with the user's own (``user_files``)
    config_files: dict[str, ConfigFile] = Field(default_factory=dict)
    stdin: str | None = None  # None: stdin is closed
    secrets: list[str] = Field(default_factory=list)  # values to redact from logs and events


class EventKind(StrEnum):
    STARTED = "started"  # carries the CLI's native session id when it says it
    MESSAGE = "message"
    TOOL_CALL = "tool_call"
    TOOL_RESULT = "tool_result"
    USAGE = "usage"
    # What one step of the call (one model request) used, said while the call runs: an
    # increment, never part of the outcome's usage (``Adapter.classify`` leaves it out). The
    # call's usage so far is the sum of its USAGE events plus the RUNNING_USAGE increments
    # said since the last of them (a USAGE event covers the steps before it); one with the
    # same ``data["step"]`` as an earlier one is that step said again, and replaces it.
    # A CLI killed before its final USAGE leaves only these (``orchestrator.spend.meter``).
    RUNNING_USAGE = "running_usage"
    RATE_LIMITED = "rate_limited"
    QUOTA = "quota"  # how much of a quota is used (``data.utilization``, 0..1) and ``reset_at``
    ERROR = "error"
    COMPLETED = "completed"
    RAW = "raw"  # a line the adapter does not understand, kept for the log


class Usage(_Value):
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None


class AgentEvent(_Value):
    """One normalized thing a CLI said."""

    kind: EventKind
    text: str = ""  # message text, tool summary, error message or the final result text
    native_session_id: str | None = None
    tool: str | None = None
    # The run's usage is the sum of the usage its events carry, RUNNING_USAGE's left out.
    usage: Usage | None = None
    retry_after: float | None = None  # seconds, when the CLI says
    reset_at: datetime | None = None  # when a quota resets, when the CLI says
    error_kind: str | None = None  # e.g. "auth", "rate_limit", "permission", "sandbox", "api"
    is_error: bool = False  # for COMPLETED: the CLI itself reported failure
    data: dict[str, Any] = Field(default_factory=dict)


class OutcomeKind(StrEnum):
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    RATE_LIMITED = "rate_limited"
    AUTH_REQUIRED = "auth_required"
    PERMISSION_DENIED = "permission_denied"
    NO_CHANGES = "no_changes"
    TIMED_OUT = "timed_out"
    CRASHED = "crashed"
    CANCELLED = "cancelled"


class Outcome(_Value):
    kind: OutcomeKind
    message: str = ""
    retry_at: datetime | None = None  # for RATE_LIMITED, when the CLI said
    retry_after: float | None = None
    native_session_id: str | None = None
    usage: Usage | None = None

    @property
    def ok(self) -> bool:
        return self.kind == OutcomeKind.SUCCEEDED


class ProcessResult(_Value):
    """How the process ended, as the core saw it."""

    exit_code: int | None  # None when killed by a signal or never reaped
    signal: int | None = None
    timed_out: bool = False
    idle_timed_out: bool = False
    cancelled: bool = False
    ended_early: bool = False  # stopped by the core at an event that settled it (ends_run)
    seconds: float = 0.0
    stderr_tail: str = ""


class AdapterCheck(_Value):
    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use
    name: str
    binary: str
    found: bool
    path: str | None = None
    version: str | None = None
    ok: bool
    message: str
