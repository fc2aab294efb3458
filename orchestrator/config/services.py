"""A service's settings: a program each session gets of its own (``orchestrator.services``),
started in the session's network before the phases that need them and stopped after.

The run config's ``services:`` section (each phase a service names must be one of the
workflow's, ``config.checks.phase_names``); a run starts them per session
(``scheduler.session_services``):

::

    services:
      db:
        command: [postgres, -D, data, -k, "", -h, 127.0.0.1, -p, "5432"]
        port: 5432                    # ready once it accepts a connection on this port
        url: "postgresql://{host}:{port}/app"
        env: {PGDATA: data}
        phases: [build, verify]       # none named: every phase
      web:
        command: python -m http.server 3000
        port: 3000
        ready: [curl, -sf, "http://127.0.0.1:3000/"]   # or: ready once this command passes

Each service gives the CLI, the verify commands and the review checks of its session
``COUNCIL_SERVICE_<NAME>_HOST``, ``_PORT`` (with a port) and ``_URL`` (``url`` with ``{host}``
and ``{port}`` filled in; ``tcp://{host}:{port}`` when only a port is given). ``<NAME>`` is the
service's name upper-cased, ``-`` as ``_``.
"""

from __future__ import annotations

from typing import Self

from pydantic import ConfigDict, Field, field_validator, model_validator

from orchestrator.config.durations import PositiveDuration
from orchestrator.config.fields import Command, EnvName, Section, UniqueIds

__all__ = ["ServiceConfig", "env_prefix"]

_PLACEHOLDERS = ("{host}", "{port}")


def env_prefix(name: str) -> str:
    """``COUNCIL_SERVICE_<NAME>_`` of the service ``name``."""
    return f"COUNCIL_SERVICE_{name.upper().replace('-', '_').replace('.', '_')}_"


class ServiceConfig(Section):
    """One service every session gets of its own (``orchestrator.services``)."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    command: Command = Field(description="the service's program and arguments (no shell)")
    port: int | None = Field(
        default=None,
        ge=1,
        le=65535,
        description="the TCP port it listens on in the session's network (127.0.0.1); "
        "it is ready once that port accepts a connection, unless `ready` says otherwise",
    )
    ready: Command | None = Field(
        default=None,
        description="a command run in the session's network until it exits 0: the service "
        "is ready then",
    )
    url: str | None = Field(
        default=None,
        description="COUNCIL_SERVICE_<NAME>_URL, with {host} and {port} filled in",
    )
    env: dict[EnvName, str] = Field(
        default_factory=dict, description="variables the service's program gets"
    )
    phases: UniqueIds = Field(
        default_factory=list,
        description="the phases that need it (none named: every phase)",
    )
    start_timeout: PositiveDuration = Field(
        default=60.0, description="how long it may take to be ready before its phase fails"
    )

    @field_validator("env")
    @classmethod
    def _no_nul(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if "\0" in value:
                raise ValueError(f"env.{name} contains a NUL character")
        return env

    @model_validator(mode="after")
    def _readiness(self) -> Self:
        if self.port is None and self.ready is None:
            raise ValueError("a service needs `port` or `ready` (how to know it is ready)")
        if self.url is not None and "{port}" in self.url and self.port is None:
            raise ValueError("url names {port} but the service has no `port`")
        if self.url is not None:
            stripped = self.url
            for placeholder in _PLACEHOLDERS:
                stripped = stripped.replace(placeholder, "")
            if "{" in stripped or "}" in stripped:
                raise ValueError("url may name only {host} and {port}")
        return self

    def needed_by(self, phase: str) -> bool:
        """Whether ``phase`` needs this service."""
        return not self.phases or phase in self.phases

    def variables(self, name: str, host: str = "127.0.0.1") -> dict[str, str]:
        """``COUNCIL_SERVICE_<NAME>_*`` of this service as ``name`` at ``host``."""
        prefix = env_prefix(name)
        out = {f"{prefix}HOST": host}
        if self.port is not None:
            out[f"{prefix}PORT"] = str(self.port)
        template = self.url or ("tcp://{host}:{port}" if self.port is not None else None)
        if template is not None:
            url = template.replace("{host}", host).replace("{port}", str(self.port or ""))
            out[f"{prefix}URL"] = url
        return out
