"""The run config as pydantic models: what a ``configs/*.yaml`` file may say, with defaults.

Every model forbids unknown keys, so a misspelt setting is an error instead of a silently
ignored line. Relative paths (``repo``, ``state.path``) are resolved against the directory of
the config file, passed as the validation context ``{"base_dir": ...}``; without it they are
resolved against the current directory. Checks that span several fields (unknown task or adapter
names, cycles) live in ``orchestrator.config.checks.run`` and run when a ``RunConfig`` is built.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated, Self

from pydantic import (
    AfterValidator,
    Field,
    PrivateAttr,
    ValidationInfo,
    field_validator,
    model_validator,
)

from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.config.budgets import BudgetsConfig, PriceConfig
from orchestrator.config.checks.problems import format_problems
from orchestrator.config.checks.run import find_problems
from orchestrator.config.fields import (
    CommandList,
    Id,
    NonBlank,
    Section,
    branch_name,
    resolve_path,
)
from orchestrator.config.forge import ForgeConfig
from orchestrator.config.mcp import McpServerConfig
from orchestrator.config.origin import ConfigOrigin
from orchestrator.config.radar import RadarConfig
from orchestrator.config.sandbox import SandboxConfig
from orchestrator.config.secrets import SecretsConfig
from orchestrator.config.sections import (
    CapacityConfig,
    LandingConfig,
    RateLimitConfig,
    RetryConfig,
    SchedulerConfig,
    StateConfig,
    WorktreeConfig,
)
from orchestrator.config.services import ServiceConfig
from orchestrator.config.sources import SourceConfig
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig, WorkflowConfig

__all__ = ["DEFER_CHECKS", "RunConfig"]

DEFER_CHECKS = "defer_checks"
"""Validation-context key: leave the cross-field checks to the caller (the YAML loader runs
them itself so each problem can be reported at its own line)."""


class RunConfig(Section):
    """A whole run: the repository, its adapters, the workflow and the tasks."""

    # The file it was read from (``config.origin``); None for one built from text.
    _origin: ConfigOrigin | None = PrivateAttr(default=None)

    repo: Path = Field(
        default=Path(),
        validate_default=True,
        description="the git repository, relative to the config file",
    )
    base_branch: Annotated[str, AfterValidator(branch_name)] = "main"
    sample_repo: bool = Field(
        default=False,
        description="create a small sample repository at `repo` when it does not exist; "
        "used by the offline demo",
    )
    capacity: CapacityConfig = Field(default_factory=CapacityConfig)
    adapters: dict[Id, AdapterConfig] = Field(default_factory=dict)
    default_adapter: Id | None = None
    workflow: WorkflowConfig = Field(default_factory=WorkflowConfig)
    retry: RetryConfig = Field(default_factory=RetryConfig)
    rate_limits: RateLimitConfig = Field(default_factory=RateLimitConfig)
    budgets: BudgetsConfig = Field(
        default_factory=BudgetsConfig,
        description="what the run may spend: run, task, adapters (usd, tokens, per day), "
        "on_exceed (orchestrator.spend)",
    )
    prices: dict[NonBlank, PriceConfig] = Field(
        default_factory=dict,
        description="model -> USD per million tokens (input, output, cache_read, "
        "cache_write), over the built-in dated table",
    )
    landing: LandingConfig = Field(default_factory=LandingConfig)
    scheduler: SchedulerConfig = Field(default_factory=SchedulerConfig)
    verify: CommandList = Field(
        default_factory=list, description="commands that must pass before a task merges"
    )
    state: StateConfig = Field(default_factory=StateConfig)
    worktrees: WorktreeConfig = Field(default_factory=WorktreeConfig)
    sandbox: SandboxConfig = Field(
        default_factory=SandboxConfig,
        description="how each CLI is confined: auto | bubblewrap | none, or a mapping with "
        "mode, network, read, write (orchestrator.sandbox)",
    )
    radar: RadarConfig = Field(
        default_factory=RadarConfig,
        description="the collision radar: warn | sequence | off, or a mapping with mode, "
        "interval (orchestrator.radar)",
    )
    secrets: SecretsConfig = Field(
        default_factory=SecretsConfig,
        description="credentials nobody declared that the landing gate and the forge's posts "
        "let through: allow, a list of {path, kind} or {fingerprint} "
        "(orchestrator.safety.secret_detect)",
    )
    services: dict[Id, ServiceConfig] = Field(
        default_factory=dict,
        description="programs each session gets of its own (a database, a dev server), "
        "started in the session's network before the phases that need them and stopped "
        "after; command, port or ready, url, env, phases, start_timeout "
        "(orchestrator.services)",
    )
    mcp_servers: dict[Id, McpServerConfig] = Field(
        default_factory=dict,
        description="MCP servers every CLI of the run gets, in its own format, beside the "
        "user's own (orchestrator.config.mcp)",
    )
    council_mcp: bool = Field(
        default=True,
        description="give each session's CLI the council's own MCP server (`council mcp "
        "--session`: who holds a path, another session's diff, handoffs, notes, lock "
        "requests; orchestrator.coordination), for each CLI that takes MCP servers",
    )
    forge: ForgeConfig | None = Field(
        default=None,
        description="the forge issues come from and pull requests go to "
        "(orchestrator.forge; type, repo, api_url, token)",
    )
    sources: list[SourceConfig] = Field(
        default_factory=list,
        description="where tasks come from besides `tasks:`: `- issues: {labels, state, poll}` "
        "makes each matching issue of the forge a task issue-<number> (orchestrator.forge)",
    )
    tasks: list[TaskConfig] = Field(
        description="the run's tasks; at least one unless `sources:` brings them (`tasks: []`)"
    )

    @field_validator("repo")
    @classmethod
    def _absolute_repo(cls, repo: Path, info: ValidationInfo) -> Path:
        return resolve_path(repo, info)

    @field_validator("adapters")
    @classmethod
    def _type_defaults_to_name(cls, adapters: dict[str, AdapterConfig]) -> dict[str, AdapterConfig]:
        return {
            name: adapter if adapter.type else adapter.model_copy(update={"type": name})
            for name, adapter in adapters.items()
        }

    @model_validator(mode="after")
    def _cross_checks(self, info: ValidationInfo) -> Self:
        if isinstance(info.context, dict) and info.context.get(DEFER_CHECKS):
            return self
        problems = find_problems(self)
        if problems:
            raise ValueError(format_problems(problems))
        return self

    # --- answers the rest of the orchestrator asks; one rule each, kept here ------------------

    @property
    def state_dir(self) -> Path:
        """Where the file state backend keeps its records."""
        return self.state.path or self.repo / ".council" / "state"

    @property
    def state_anchor(self) -> Path:
        """The directory the state store's files are reached from without following a link:
        the repository when the state lives in it, else the state directory itself."""
        inside = Path(os.path.normpath(self.state_dir)).is_relative_to(os.path.normpath(self.repo))
        return self.repo if inside else self.state_dir

    def phase(self, name: str) -> PhaseConfig:
        """The phase called ``name`` (``KeyError`` if the workflow has none)."""
        for phase in self.workflow.phases:
            if phase.name == name:
                return phase
        raise KeyError(name)

    def phases_for(self, task: TaskConfig) -> list[PhaseConfig]:
        """The phases ``task`` runs, in order."""
        if task.phases is None:
            return list(self.workflow.phases)
        return [self.phase(name) for name in task.phases]

    def stacked(self, task: TaskConfig) -> bool:
        """``task`` lands as a stacked pull request: its own ``landing.pulls``, else the
        run's, is ``stacked`` (and the run lands through pull requests)."""
        own = task.landing.pulls if task.landing is not None else None
        mode = own or self.landing.pulls
        return mode == "stacked" and self.landing.via == "pull_request"

    def verify_for(self, task: TaskConfig) -> list[list[str]]:
        """The verify commands for ``task``: its own when it sets ``verify``, else the run's."""
        return [list(argv) for argv in (self.verify if task.verify is None else task.verify)]

    def adapter_chain(self, task: TaskConfig, phase: PhaseConfig) -> list[str]:
        """Adapters to try for ``task`` in ``phase``, primary first.

        The most specific setting wins: the task's ``adapters`` list, else the phase's
        ``adapter``, else ``default_adapter``, else the only adapter defined. Unless the task
        lists its own fallbacks, the primary adapter's ``fallback`` list follows it. An empty
        answer means no adapter is configured at all (the caller decides, e.g. auto-detection).
        """
        if task.adapters:
            return list(task.adapters)
        primary = phase.adapter or self.default_adapter
        if primary is None and len(self.adapters) == 1:
            primary = next(iter(self.adapters))
        if primary is None:
            return []
        chain = [primary]
        configured = self.adapters.get(primary)
        for name in configured.fallback if configured else []:
            if name not in chain:
                chain.append(name)
        return chain
