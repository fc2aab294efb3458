"""Command-building helpers shared by the built-in adapters."""

from __future__ import annotations

import functools
import json
import os
import re
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, Field

from orchestrator.adapter import AdapterConfig, AdapterRequest, McpServer, too_long_for_argument

__all__ = [
    "MODEL",
    "OUTPUT",
    "PROMPT",
    "SESSION",
    "AddDirs",
    "absolute_dirs",
    "add_dirs_field",
    "command_env",
    "flag_like",
    "json_file",
    "mcp_entry",
    "node_heap_of_half_the_memory",
    "option",
    "owns",
    "stdin_prompt",
    "system_prompt_field",
    "toml_string",
]

C = TypeVar("C", bound=AdapterConfig)

_SECRET_NAME = re.compile(r"KEY|TOKEN|SECRET|PASSWORD|CREDENTIAL", re.IGNORECASE)


def command_env(
    request: AdapterRequest, knobs: Mapping[str, str]
) -> tuple[dict[str, str], list[str]]:
    """The env overlay (the adapter's knobs, then the run config's ``env``, which wins) and
    the values in it to redact: those of variables named like credentials."""
    env = {**knobs, **request.env}
    secrets = sorted(
        {value for name, value in request.env.items() if value and _SECRET_NAME.search(name)}
    )
    return env, secrets


@functools.cache
def node_heap_of_half_the_memory() -> str:
    """``--max-old-space-size=<half of the machine's memory, in MiB>``: the heap gemini gives
    itself by starting a second Node.js process with that flag (``autoConfigureMemory``), given
    to the one process instead (``NODE_OPTIONS``). Half is always over Node's own default (a
    quarter of the memory, at most 4 GiB), so it never lowers what the CLI would have had."""
    total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")  # Node's os.totalmem()
    return f"--max-old-space-size={total // (2 * 1024 * 1024)}"


# What to use instead of a flag the adapter sets itself (``owned_flags`` of its options).
MODEL = "set `model:` (the adapter's or the phase's) instead"
OUTPUT = "the adapter reads the output format it asks for"
PROMPT = "the prompt is the task's, given by the adapter"
SESSION = "the orchestrator continues sessions itself"


def owns(instead: str, *flags: str) -> dict[str, str]:
    """``owned_flags`` entries: each of ``flags`` (aliases included) -> ``instead``."""
    return dict.fromkeys(flags, instead)


def option(name: str) -> str:
    return f"set the adapter's option `{name}` instead"


def flag_like(prompt: str) -> bool:
    """Would an option parser read this prompt as a flag? Then it needs another way in."""
    return prompt.startswith("-")


def stdin_prompt(prompt: str) -> str | None:
    """The prompt to feed on stdin, for a CLI that reads it there when none is on its command
    line: one an option parser would take for a flag, or one too long for an argument."""
    return prompt if flag_like(prompt) or too_long_for_argument(prompt) else None


def json_file(data: Mapping[str, Any]) -> str:
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


def toml_string(value: str) -> str:
    """A TOML basic string: JSON's escapes (ASCII-only) are a subset TOML accepts."""
    return json.dumps(value, ensure_ascii=True)


# The typed options several adapters share, each documented once for the JSON schema.
def system_prompt_field() -> Any:
    return Field(
        default=None,
        description="text added to the CLI's own system prompt (its instructions), on every "
        "phase; the CLI's default prompt and the user's instruction files stay",
    )


def add_dirs_field() -> Any:
    return Field(
        default_factory=list,
        description="more directories the CLI may read beside its worktree (absolute, `~` "
        "allowed); under the sandbox they are read-only: work lands only from the worktree",
    )


# The type of every adapter's ``add_dirs``: checked and made absolute as it is validated.
AddDirs = Annotated[list[str], AfterValidator(lambda dirs: absolute_dirs(dirs))]


def absolute_dirs(dirs: list[str]) -> list[str]:
    """``add_dirs`` as absolute paths (``~`` expanded); a relative one is refused."""
    out = []
    for entry in dirs:
        path = os.path.expanduser(entry)
        if not os.path.isabs(path) or "\0" in path:
            raise ValueError(f"add_dirs: {entry!r} is not an absolute path")
        out.append(os.path.normpath(path))
    return out


def mcp_entry(server: McpServer, style: str) -> dict[str, Any]:
    """One MCP server in a CLI's own format: ``claude`` (``.mcp.json``), ``gemini`` (gemini's
    and qwen's ``mcpServers``), ``codex`` (``[mcp_servers.NAME]``), ``opencode`` (``mcp``)."""
    env, headers = dict(server.env), dict(server.headers)
    if server.command is not None:
        if style == "opencode":
            entry: dict[str, Any] = {"type": "local", "command": [server.command, *server.args]}
            return {**entry, **_OPENCODE_WAIT, **({"environment": env} if env else {})}
        entry = {"command": server.command, "args": list(server.args)}
        if style == "claude":
            entry["type"] = "stdio"
        if style == "codex":
            entry |= _CODEX_WAIT
            if server.trusted:  # codex 0.169 refuses an MCP call needing approval headless
                entry["default_tools_approval_mode"] = "approve"
        return {**entry, **({"env": env} if env else {})}
    url = server.url or ""
    if style == "opencode":
        return {"type": "remote", "url": url, **_OPENCODE_WAIT, **_maybe("headers", headers)}
    if style == "codex":
        return {"url": url, **_CODEX_WAIT, **_maybe("http_headers", headers)}
    if style == "gemini":
        return {"httpUrl": url, **_maybe("headers", headers)}
    return {"type": "http", "url": url, **_maybe("headers", headers)}


# The run's servers are there on the first request: codex 0.169 waits for a server before it
# only when it is `required` (measured: under load the first request went without it), and
# opencode gives one 5 s to start by default (an `npx` server's first start takes longer).
_CODEX_WAIT: dict[str, Any] = {"required": True, "startup_timeout_sec": 60}
_OPENCODE_WAIT: dict[str, Any] = {"enabled": True, "timeout": 60_000}


def _maybe(key: str, value: dict[str, str]) -> dict[str, Any]:
    return {key: value} if value else {}
