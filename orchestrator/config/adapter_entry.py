"""One entry under the run config's ``adapters:``: a configured CLI, the name tasks refer to."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import ConfigDict, Field, field_validator

from orchestrator.config.fields import ENV_NAME, EnvNames, Id, NonBlank, Section, UniqueIds
from orchestrator.config.sandbox import SandboxConfig

__all__ = ["AdapterConfig"]


class AdapterConfig(Section):
    """One configured CLI. The key under ``adapters:`` is the name tasks refer to."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    type: Id | None = Field(
        default=None,
        description="adapter plugin that drives this CLI; defaults to the key (always set "
        "once loaded)",
    )
    executable: NonBlank | None = Field(default=None, description="binary name or path")
    model: NonBlank | None = None
    options: dict[str, Any] = Field(
        default_factory=dict, description="adapter-specific; validated by the adapter plugin"
    )
    env: dict[str, str] = Field(
        default_factory=dict,
        description="extra environment variables; `${NAME}` in a value is NAME from the "
        "environment council runs in (a secret stays out of this file; `$${` is a literal "
        "`${`); an unset NAME is an error before the run starts",
    )
    pass_env: EnvNames = Field(
        default_factory=list,
        description="more variables of the environment council runs in that this CLI gets "
        "as they are (a key under a name of your own); their values are masked wherever stored",
    )
    credentials: Literal["shared", "isolated"] = Field(
        default="shared",
        description="shared: the CLI sees the user's own login (their credential files, "
        "linked into its private HOME); isolated: only what the run config gives it",
    )
    user_config: Literal["merge", "ignore"] = Field(
        default="merge",
        description="merge: the CLI runs with its user's own configuration (settings, MCP "
        "servers, instructions, agents), merged with what the run must set, each key the run "
        "replaced said in the CLI's log; ignore: none of it (a reproducible run)",
    )
    sandbox: SandboxConfig | None = Field(
        default=None,
        description="this CLI's own sandbox settings, laid over the run's `sandbox:`",
    )
    account: NonBlank | None = Field(
        default=None,
        description="a name for the account this CLI runs under, in the cost ledger and its "
        "budgets (default: the login or key it finds, by name, never the secret)",
    )
    fallback: UniqueIds = Field(
        default_factory=list, description="adapters to try, in order, when this one is parked"
    )

    @field_validator("env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for name, value in env.items():
            if not ENV_NAME.fullmatch(name):
                raise ValueError(f"{name!r} is not a valid environment variable name")
            if "\0" in value:
                raise ValueError(f"{name}: value contains a NUL character")
        return env
