"""Checks on a run config that span several fields: names that must refer to something.

Each problem is a field path plus a message, so the YAML loader can put it on the line where
that field is written. The checks run on an already validated ``RunConfig`` (types, ranges and
id syntax are pydantic's job).
"""

from __future__ import annotations

from collections.abc import Iterator

from orchestrator.config.checks.phase_names import phase_problems
from orchestrator.config.checks.problems import (
    Problem,
    RunSections,
    unknown_adapter,
)
from orchestrator.config.checks.tasks import (
    check_council,
    check_cycles,
    check_tasks,
)
from orchestrator.config.durations import format_duration
from orchestrator.config.fieldpath import Loc

__all__ = ["find_problems"]


def find_problems(config: RunSections) -> list[Problem]:
    """Every cross-field problem in ``config``, in the order the fields appear."""
    return [
        *_check_timing(config),
        *_check_state(config),
        *_check_phases(config),
        *_check_adapters(config),
        *check_tasks(config),
        *phase_problems(config),
        *check_council(config.tasks),
        *check_cycles(config.tasks),
    ]


def _check_timing(config: RunSections) -> Iterator[Problem]:
    retry, scheduler = config.retry, config.scheduler
    if retry.backoff_max < retry.backoff_initial:
        yield (
            ("retry", "backoff_max"),
            f"must be at least backoff_initial ({format_duration(retry.backoff_initial)})",
        )
    if scheduler.stale_threshold <= scheduler.heartbeat_interval:
        yield (
            ("scheduler", "stale_threshold"),
            "must be longer than heartbeat_interval "
            f"({format_duration(scheduler.heartbeat_interval)}), or every live claim "
            "would look stale",
        )


def _check_state(config: RunSections) -> Iterator[Problem]:
    state = config.state
    if state.backend == "file":
        for name in ("dsn", "run", "remote"):
            if getattr(state, name) is not None:
                yield ("state", name), "only used with backend: postgresql"
    elif state.path is not None:
        yield ("state", "path"), "only used with backend: file"


def _check_phases(config: RunSections) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, phase in enumerate(config.workflow.phases):
        if phase.name in seen:
            yield ("workflow", "phases", index, "name"), f"duplicate phase name {phase.name!r}"
        seen.add(phase.name)


def _check_adapters(config: RunSections) -> Iterator[Problem]:
    defined = config.adapters
    if config.default_adapter is not None and config.default_adapter not in defined:
        yield ("default_adapter",), unknown_adapter(config, config.default_adapter)
    for name in config.capacity.per_adapter:
        if name not in defined:
            yield ("capacity", "per_adapter", name), unknown_adapter(config, name)
    for index, phase in enumerate(config.workflow.phases):
        if phase.adapter is not None and phase.adapter not in defined:
            yield ("workflow", "phases", index, "adapter"), unknown_adapter(config, phase.adapter)
    for name in config.budgets.adapters:
        if name not in defined:
            yield ("budgets", "adapters", name), unknown_adapter(config, name)
    for name in config.rate_limits.quotas:
        if name not in defined:
            yield ("rate_limits", "quotas", name), unknown_adapter(config, name)
    for name, adapter in defined.items():
        for position, other in enumerate(adapter.fallback):
            where: Loc = ("adapters", name, "fallback", position)
            if other == name:
                yield where, "an adapter cannot fall back to itself"
            elif other not in defined:
                yield where, unknown_adapter(config, other)
