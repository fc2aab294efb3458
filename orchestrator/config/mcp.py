"""The run config's ``mcp_servers:``: MCP servers every CLI of the run is given, each in its
own format (the adapters translate: claude's ``--mcp-config``, codex's ``[mcp_servers]``,
gemini's and qwen's ``mcpServers``, opencode's ``mcp``). A CLI that takes none (aider) is
warned about before the run."""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from orchestrator.config.fields import ENV_NAME, NonBlank, Section

__all__ = ["McpServerConfig"]


class McpServerConfig(Section):
    """One MCP server: a local command (stdio) or a URL (streamable HTTP), not both."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    command: NonBlank | None = Field(
        default=None, description="the server's program, started by each CLI (stdio)"
    )
    args: list[str] = Field(default_factory=list, description="the program's arguments")
    env: dict[str, str] = Field(
        default_factory=dict,
        description="the program's environment; `${NAME}` in a value is NAME from the "
        "environment council runs in (masked wherever stored)",
    )
    url: NonBlank | None = Field(default=None, description="a streamable HTTP server's URL")
    headers: dict[str, str] = Field(
        default_factory=dict, description="HTTP headers for `url`; `${NAME}` as in env"
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name in env:
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
        return env

    @model_validator(mode="after")
    def _one_kind(self) -> Self:
        if (self.command is None) == (self.url is None):
            raise ValueError("an MCP server is a `command` (stdio) or a `url` (HTTP), one of them")
        if self.url is None and self.headers:
            raise ValueError("`headers` go with a `url`, not a `command`")
        if self.url is not None and (self.args or self.env):
            raise ValueError("`args` and `env` go with a `command`, not a `url`")
        if self.url is not None and not self.url.startswith(("http://", "https://")):
            raise ValueError(f"url {self.url!r} is not an http:// or https:// URL")
        return self
