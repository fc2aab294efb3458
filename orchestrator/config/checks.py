"""Checks on a run config that span several fields: names that must refer to something.

Each problem is a field path plus a message, so the YAML loader can put it on the line where
that field is written. The checks run on an already validated ``RunConfig`` (types, ranges and
id syntax are pydantic's job).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from typing import Protocol

from orchestrator.config.adapter_entry import AdapterConfig
from orchestrator.config.durations import format_duration
from orchestrator.config.fieldpath import Loc, format_loc
from orchestrator.config.sections import CapacityConfig, RetryConfig, SchedulerConfig, StateConfig
from orchestrator.config.suggest import did_you_mean
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig, WorkflowConfig

__all__ = ["COUNCIL_ID_LIMIT", "Problem", "RunSections", "find_problems", "format_problems"]

Problem = tuple[Loc, str]


class RunSections(Protocol):
    """What the checks read of a run config: ``RunConfig``, which runs them when it is built
    (a protocol, so this module needs nothing of the module that defines ``RunConfig``)."""

    @property
    def capacity(self) -> CapacityConfig: ...
    @property
    def adapters(self) -> Mapping[str, AdapterConfig]: ...
    @property
    def default_adapter(self) -> str | None: ...
    @property
    def workflow(self) -> WorkflowConfig: ...
    @property
    def retry(self) -> RetryConfig: ...
    @property
    def scheduler(self) -> SchedulerConfig: ...
    @property
    def state(self) -> StateConfig: ...
    @property
    def tasks(self) -> Sequence[TaskConfig]: ...

    def phase(self, name: str) -> PhaseConfig: ...

    def adapter_chain(self, task: TaskConfig, phase: PhaseConfig) -> list[str]: ...


def format_problems(problems: Iterable[Problem]) -> str:
    """Problems as ``field: message`` lines (for errors raised outside the YAML loader)."""
    return "\n".join(f"{format_loc(loc)}: {message}" for loc, message in problems)


def find_problems(config: RunSections) -> list[Problem]:
    """Every cross-field problem in ``config``, in the order the fields appear."""
    return [
        *_check_timing(config),
        *_check_state(config),
        *_check_phases(config),
        *_check_adapters(config),
        *_check_tasks(config),
        *_check_council(config.tasks),
        *_check_cycles(config.tasks),
    ]


def _names(names: Iterable[str]) -> str:
    listed = ", ".join(sorted(names))
    return listed or "none"


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
    if state.backend == "postgresql" and state.dsn is None:
        yield ("state", "dsn"), "required when backend is postgresql"
    if state.backend == "file" and state.dsn is not None:
        yield ("state", "dsn"), "only used with backend: postgresql"


def _check_phases(config: RunSections) -> Iterator[Problem]:
    seen: set[str] = set()
    for index, phase in enumerate(config.workflow.phases):
        if phase.name in seen:
            yield ("workflow", "phases", index, "name"), f"duplicate phase name {phase.name!r}"
        seen.add(phase.name)
    for name in config.capacity.per_phase:
        if name not in seen:
            yield (
                ("capacity", "per_phase", name),
                f"unknown phase {name!r} (phases: {_names(seen)})",
            )


def _unknown_adapter(config: RunSections, name: str) -> str:
    if not config.adapters:
        return f"unknown adapter {name!r}: no adapters are defined under `adapters:`"
    hint = did_you_mean(name, config.adapters)
    return f"unknown adapter {name!r}{hint} (defined: {_names(config.adapters)})"


def _check_adapters(config: RunSections) -> Iterator[Problem]:
    defined = config.adapters
    if config.default_adapter is not None and config.default_adapter not in defined:
        yield ("default_adapter",), _unknown_adapter(config, config.default_adapter)
    for name in config.capacity.per_adapter:
        if name not in defined:
            yield ("capacity", "per_adapter", name), _unknown_adapter(config, name)
    for index, phase in enumerate(config.workflow.phases):
        if phase.adapter is not None and phase.adapter not in defined:
            yield ("workflow", "phases", index, "adapter"), _unknown_adapter(config, phase.adapter)
    for name, adapter in defined.items():
        for position, other in enumerate(adapter.fallback):
            where: Loc = ("adapters", name, "fallback", position)
            if other == name:
                yield where, "an adapter cannot fall back to itself"
            elif other not in defined:
                yield where, _unknown_adapter(config, other)


def _check_tasks(config: RunSections) -> Iterator[Problem]:
    first_index: dict[str, int] = {}
    phase_names = {phase.name for phase in config.workflow.phases}
    if not config.tasks:
        yield ("tasks",), "at least one task is required"
    for index, task in enumerate(config.tasks):
        if task.id in first_index:
            yield (
                ("tasks", index, "id"),
                f"duplicate task id {task.id!r} (first used by tasks[{first_index[task.id]}])",
            )
        else:
            first_index[task.id] = index
    for index, task in enumerate(config.tasks):
        for position, dependency in enumerate(task.depends_on):
            if dependency not in first_index:
                yield ("tasks", index, "depends_on", position), f"unknown task {dependency!r}"
        for position, name in enumerate(task.adapters):
            if name not in config.adapters:
                yield ("tasks", index, "adapters", position), _unknown_adapter(config, name)
        for position, name in enumerate(task.phases or []):
            if name not in phase_names:
                yield (
                    ("tasks", index, "phases", position),
                    f"unknown phase {name!r} (phases: {_names(phase_names)})",
                )
        yield from _check_task_has_adapter(config, index, task)


def _check_task_has_adapter(config: RunSections, index: int, task: TaskConfig) -> Iterator[Problem]:
    # With no adapters at all the choice is left to the run (it may detect installed CLIs);
    # once some are defined, every phase of every task must say which one it uses.
    if not config.adapters or task.adapters:
        return
    phase_names = {phase.name for phase in config.workflow.phases}
    wanted = [name for name in task.phases or phase_names if name in phase_names]
    missing = [name for name in wanted if not config.adapter_chain(task, config.phase(name))]
    if missing:
        yield (
            ("tasks", index, "adapters"),
            f"no adapter chosen for phase {', '.join(sorted(missing))}: set this task's "
            "adapters, the phase's adapter, or default_adapter",
        )


COUNCIL_ID_LIMIT = 56
"""Longest id of a council task: its candidates are ``<id>.c<k>`` and its file locks are held
by ``<id>.council``, which must still be valid ids."""


def _check_council(tasks: Sequence[TaskConfig]) -> Iterator[Problem]:
    ids = {task.id for task in tasks}
    for index, task in enumerate(tasks):
        if not task.council:
            continue
        if len(task.adapters) < 2:
            yield (
                ("tasks", index, "adapters"),
                "a council task needs at least two adapters: each one runs a candidate",
            )
        if len(task.id) > COUNCIL_ID_LIMIT:
            yield (
                ("tasks", index, "id"),
                f"a council task's id may have at most {COUNCIL_ID_LIMIT} characters "
                "(its candidates are named <id>.c1, <id>.c2, ...)",
            )
        taken = sorted(ids & {f"{task.id}.c{k}" for k in range(1, len(task.adapters) + 1)})
        if taken:
            yield (
                ("tasks", index, "id"),
                f"task id {taken[0]!r} is the name of one of this council task's candidates",
            )


def _check_cycles(tasks: Sequence[TaskConfig]) -> Iterator[Problem]:
    index_of = {task.id: index for index, task in reversed(list(enumerate(tasks)))}
    done: set[str] = set()
    # Iterative depth-first search; `path` is the chain of tasks currently being explored.
    for start in tasks:
        if start.id in done:
            continue
        path: list[str] = []
        on_path: set[str] = set()
        stack: list[tuple[str, int]] = [(start.id, 0)]
        while stack:
            task_id, position = stack.pop()
            if position == 0:
                path.append(task_id)
                on_path.add(task_id)
            depends_on = tasks[index_of[task_id]].depends_on
            if position < len(depends_on):
                stack.append((task_id, position + 1))
                dependency = depends_on[position]
                if dependency in on_path:
                    cycle = [*path[path.index(dependency) :], dependency]
                    yield (
                        ("tasks", index_of[task_id], "depends_on", position),
                        f"dependency cycle: {' -> '.join(cycle)}",
                    )
                elif dependency in index_of and dependency not in done:
                    stack.append((dependency, 0))
                continue
            path.pop()
            on_path.discard(task_id)
            done.add(task_id)
