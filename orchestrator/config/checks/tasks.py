"""The checks of a run config's ``tasks:``: unique ids, known dependencies and adapters (the
phases they name: ``phase_names``), an adapter for every phase, council tasks that can name
their candidates, no dependency cycles."""

from __future__ import annotations

from collections.abc import Iterator, Sequence

from orchestrator.config.checks.problems import Problem, RunSections, unknown_adapter
from orchestrator.config.task import TaskConfig

__all__ = ["COUNCIL_ID_LIMIT", "check_council", "check_cycles", "check_tasks"]


def check_tasks(config: RunSections) -> Iterator[Problem]:
    first_index: dict[str, int] = {}
    if not config.tasks and not config.sources:
        yield ("tasks",), "at least one task is required (or a `sources:` that brings them)"
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
                yield ("tasks", index, "adapters", position), unknown_adapter(config, name)
        yield from _task_has_adapter(config, index, task)
    yield from _stacked_pulls(config)


def _stacked_pulls(config: RunSections) -> Iterator[Problem]:
    """``pulls: stacked`` (the run's or a task's) lands through pull requests only."""
    if config.landing.via == "pull_request":
        return
    why = "stacked needs landing.via: pull_request (a stack is made of pull requests)"
    if config.landing.pulls == "stacked":
        yield ("landing", "pulls"), why
    for index, task in enumerate(config.tasks):
        if task.landing is not None and task.landing.pulls == "stacked":
            yield ("tasks", index, "landing", "pulls"), why


def _task_has_adapter(config: RunSections, index: int, task: TaskConfig) -> Iterator[Problem]:
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


def check_council(tasks: Sequence[TaskConfig]) -> Iterator[Problem]:
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


def check_cycles(tasks: Sequence[TaskConfig]) -> Iterator[Problem]:
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
