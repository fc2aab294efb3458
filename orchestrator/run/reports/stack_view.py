"""A stack of pull requests as the report shows it (``landing.pulls: stacked``): each task's
place in its stack (1 on the base, 2 on a pull request of place 1, ...) and the pull requests
below and above it, read from the task records alone (``metadata.pull.stack``)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from orchestrator.models import TaskState
from orchestrator.run.reports.report import StackLink, StackReport
from orchestrator.task_meta import StackState, TaskMeta

__all__ = ["stack_reports"]


def _stack(state: TaskState | None) -> StackState | None:
    return TaskMeta.peek(state.metadata).pull.stack if state is not None else None


def _link(task_id: str, by_id: Mapping[str, TaskState]) -> StackLink:
    state = by_id.get(task_id)
    pull = TaskMeta.peek(state.metadata).pull.pull if state is not None else None
    return StackLink(task_id=task_id, number=pull.number if pull is not None else None)


def stack_reports(states: Sequence[TaskState]) -> dict[str, StackReport]:
    """Per task id, its place in a stack; only the tasks of a stack (standing on a pull
    request, or one standing on theirs)."""
    by_id = {s.task_id: s for s in states}
    # A task with no stack (every one but a stacked pull request's) lists nothing below it,
    # without a ``StackState`` made for it (10,000 in a stop's report of a big run).
    below = {s.task_id: list(stack.below or []) if (stack := _stack(s)) else [] for s in states}
    above: dict[str, list[str]] = {}
    for task_id, under in below.items():
        for dep in under:
            above.setdefault(dep, []).append(task_id)
    places: dict[str, int] = {}

    def place(task_id: str, seen: frozenset[str]) -> int:
        if task_id not in places:
            under = [d for d in below.get(task_id, []) if d not in seen]
            places[task_id] = 1 + max((place(d, seen | {task_id}) for d in under), default=0)
        return places[task_id]

    members = {t for t, under in below.items() if under} | set(above)
    return {
        task_id: StackReport(
            place=place(task_id, frozenset()),
            below=[_link(d, by_id) for d in below.get(task_id, [])],
            above=[_link(d, by_id) for d in sorted(above.get(task_id, []))],
        )
        for task_id in sorted(members)
    }
