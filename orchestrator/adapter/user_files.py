"""The user's own configuration of a CLI: what an adapter declares so the runner can carry it
into the CLI's private HOME (``orchestrator.runner.user_config`` does the carrying).

A CLI runs with a private HOME, so without this it would run without its user's settings, MCP
servers, instructions and agents. Each adapter lists the user-level files of its CLI
(``UserFile``); before each start the runner carries those the user has:

- a file the adapter also writes (a ``ConfigFile`` in ``CommandSpec.config_files`` naming it)
  is **merged**: the adapter's ``defaults``, then the user's file over them, then the
  adapter's ``required`` keys over both; each key of the user's that ``required`` replaced is
  said in the CLI's log;
- any other is **linked**, read-only under the sandbox: instructions, agents, commands.

``user_config: ignore`` on an adapter carries nothing (a reproducible run); ``credentials:
isolated`` still carries settings but drops the keys a ``ConfigFile`` names as ``logins``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = ["ConfigFile", "KeyPath", "UserFile", "user_path"]

KeyPath = tuple[str, ...]
"""A key inside a config file, one element per level: ``("mcp_servers", "my.server")``."""


def user_path(
    home_path: str, moved_by: str | None, moved_path: str | None, env: Mapping[str, str]
) -> Path:
    """Where the user's own copy of ``home_path`` is: below ``$moved_by`` when the user set
    that variable (``CODEX_HOME``, ``CLAUDE_CONFIG_DIR``), else below their HOME."""
    moved = env.get(moved_by) if moved_by else None
    if moved:
        rest = moved_path or str(Path(*Path(home_path).parts[1:]))
        return Path(moved).expanduser() / rest
    return Path(env.get("HOME") or Path.home()) / home_path


@dataclass(frozen=True)
class UserFile:
    """One file or directory of a CLI's user-level configuration.

    ``home_path`` is where the CLI reads it, relative to its HOME; ``moved_by`` and
    ``moved_path`` as for ``Credential``: a variable the user may set to move it.
    """

    home_path: str
    what: str  # said in the CLI's log and in the README: "settings", "MCP servers", "agents"
    moved_by: str | None = None
    moved_path: str | None = None

    def source(self, env: Mapping[str, str]) -> Path:
        """The user's file (or directory), which may not exist."""
        return user_path(self.home_path, self.moved_by, self.moved_path, env)

    @property
    def target(self) -> str:
        return self.home_path


class ConfigFile(BaseModel):
    """A config file the adapter writes into the CLI's private HOME, merged with the user's.

    The file written is ``defaults``, then the user's own file (the ``UserFile`` at ``user``,
    by default the same HOME path) laid over them, then ``required`` over both: ``defaults``
    are what the orchestrator prefers where the user said nothing (no telemetry, no
    auto-update), ``required`` what the run cannot do without (its endpoint, the options of the
    run config). Tables merge key by key; any other value replaces.
    """

    model_config = ConfigDict(defer_build=True, extra="forbid", frozen=True)

    format: Literal["json", "toml", "yaml"]
    defaults: dict[str, Any] = Field(default_factory=dict)
    required: dict[str, Any] = Field(default_factory=dict)
    user: str | None = None  # the UserFile merged in, when not the file's own HOME path
    logins: tuple[KeyPath, ...] = ()  # keys of the user's file holding a login
    dropped: tuple[KeyPath, ...] = ()  # keys of the user's file never carried (per-path state)
    # HOME-relative globs of the copies the CLI itself makes of the file (its backups): they
    # hold the user's settings too, so they go when the file goes.
    copies: tuple[str, ...] = ()
