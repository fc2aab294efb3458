"""What every check of a run config deals in: a problem (a field path and a message), the run
config as the checks read it (``RunSections``), and the messages they share."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Protocol

from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.config.budgets import BudgetsConfig
from orchestrator.config.fieldpath import Loc, format_loc
from orchestrator.config.sections import (
    CapacityConfig,
    LandingConfig,
    RateLimitConfig,
    RetryConfig,
    SchedulerConfig,
    StateConfig,
)
from orchestrator.config.services import ServiceConfig
from orchestrator.config.sources import SourceConfig
from orchestrator.config.suggest import did_you_mean
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig, WorkflowConfig

__all__ = [
    "Problem",
    "RunSections",
    "format_problems",
    "names",
    "unknown_adapter",
    "unknown_phase",
]


Problem = tuple[Loc, str]


class RunSections(Protocol):
    """What the checks read of a run config: ``RunConfig``, which runs them when it is built
    (a protocol, so this module needs nothing of the module that defines ``RunConfig``)."""

    @property
    def capacity(self) -> CapacityConfig: ...
    @property
    def budgets(self) -> BudgetsConfig: ...
    @property
    def rate_limits(self) -> RateLimitConfig: ...
    @property
    def adapters(self) -> Mapping[str, AdapterConfig]: ...
    @property
    def default_adapter(self) -> str | None: ...
    @property
    def workflow(self) -> WorkflowConfig: ...
    @property
    def retry(self) -> RetryConfig: ...
    @property
    def landing(self) -> LandingConfig: ...
    @property
    def scheduler(self) -> SchedulerConfig: ...
    @property
    def state(self) -> StateConfig: ...
    @property
    def tasks(self) -> Sequence[TaskConfig]: ...
    @property
    def sources(self) -> Sequence[SourceConfig]: ...
    @property
    def services(self) -> Mapping[str, ServiceConfig]: ...

    def phase(self, name: str) -> PhaseConfig: ...

    def adapter_chain(self, task: TaskConfig, phase: PhaseConfig) -> list[str]: ...


def format_problems(problems: Iterable[Problem]) -> str:
    """Problems as ``field: message`` lines (for errors raised outside the YAML loader)."""
    return "\n".join(f"{format_loc(loc)}: {message}" for loc, message in problems)


def names(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return listed or "none"


def unknown_adapter(config: RunSections, name: str) -> str:
    if not config.adapters:
        return f"unknown adapter {name!r}: no adapters are defined under `adapters:`"
    hint = did_you_mean(name, config.adapters)
    return f"unknown adapter {name!r}{hint} (defined: {names(config.adapters)})"


def unknown_phase(config: RunSections, name: str) -> str:
    """A phase name the workflow has no phase of, the closest of its phases suggested."""
    known = {phase.name for phase in config.workflow.phases}
    return f"unknown phase {name!r}{did_you_mean(name, known)} (phases: {names(known)})"
