"""The queue's rules: which task goes next, and why a task waits. Pure functions of state.

- Order: highest ``priority`` first, then the oldest (created first; config order breaks ties).
- A task is **ready** when it is ``queued`` and its retry backoff (``metadata.not_before``) has
  passed, or ``parked`` and its park (``metadata.parked_until``) has lifted.
- It **waits on its dependencies** until every task in ``depends_on`` is ``done`` (merged); a
  dependency that ended any other way (failed, conflict, cancelled) can never be merged, so the
  dependent is failed at once instead of waiting forever (``broken_dependency``).
- Its **adapter** is the first of its chain not parked on a quota; a parked task keeps the
  adapter it parked on, because it resumes that CLI's own conversation.
- **Why it waits** (``wait_reason``), for people: what of the above holds it back, or, for a
  ``merging`` task, what its landing waits for (``metadata.waiting``, written by the lander).

Whether its declared files are free and whether a slot is free are asked by the scheduler,
which holds the locks and the slots.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState, TaskStatus
from orchestrator.task_meta import TaskMeta

if TYPE_CHECKING:  # `council status` reads the report through this module: no config needed
    from orchestrator.config.run import RunConfig
    from orchestrator.config.task import TaskConfig

__all__ = [
    "TASKS_OPTION",
    "broken_dependency",
    "choose_adapter",
    "dependencies",
    "first_phase",
    "held_for_checkout",
    "ordered",
    "ready",
    "wait_ends",
    "wait_reason",
    "waiting_on",
]

TASKS_OPTION = "tasks"  # session options: every task's config, so a resume can rebuild them


def ordered(tasks: Sequence[TaskConfig], states: Mapping[str, TaskState]) -> list[TaskConfig]:
    """``tasks`` in dispatch order: priority, then age, then position."""
    position = {task.id: index for index, task in enumerate(tasks)}

    def key(task: TaskConfig) -> tuple[int, datetime, int]:
        return (-task.priority, states[task.id].created_at, position[task.id])

    # A task the store does not know yet (submitted a moment ago) goes after the known ones.
    dated = [t for t in tasks if t.id in states]
    undated = [t for t in tasks if t.id not in states]
    return sorted(dated, key=key) + undated


def ready(state: TaskState, now: datetime) -> bool:
    if state.status == TaskStatus.QUEUED:
        not_before = TaskMeta.peek(state.metadata).retry.not_before
        return not_before is None or not_before <= now
    if state.status == TaskStatus.PARKED:
        until = TaskMeta.peek(state.metadata).park.until
        return until is None or until <= now
    return False


def waiting_on(task: TaskConfig, states: Mapping[str, TaskState]) -> list[str]:
    """Dependencies not merged yet."""
    return [
        dep
        for dep in task.depends_on
        if (state := states.get(dep)) is None or state.status != TaskStatus.DONE
    ]


def wait_ends(state: TaskState, now: datetime) -> datetime | None:
    """When the timed wait ``wait_reason`` reports for ``state`` ends (a park, a retry's
    back-off), if it is still ahead of ``now``: from then on the same record reads otherwise."""
    if state.status == TaskStatus.PARKED:
        until = TaskMeta.peek(state.metadata).park.until
    elif state.status == TaskStatus.QUEUED:
        until = TaskMeta.peek(state.metadata).retry.not_before
    else:
        return None
    return until if until is not None and until > now else None


def wait_reason(
    depends_on: Sequence[str], state: TaskState, states: Mapping[str, TaskState], now: datetime
) -> str | None:
    """What holds a task (its record ``state``, its ``depends_on``) back, as a phrase
    (``parked until 14:03:10 on claude``), or None when nothing in the records does (it may
    still wait for a slot or a file: the dispatcher knows those). Times are this machine's
    local clock."""
    meta = TaskMeta.peek(state.metadata)  # a damaged value reads as absent
    if state.status in (TaskStatus.MERGING, TaskStatus.WAITING_FOR_CHECKOUT):
        return meta.landing.waiting
    if state.status == TaskStatus.IN_REVIEW:
        pull = meta.pull.pull  # the pull request as last seen
        return (pull.waiting or None) if pull is not None else None
    if state.status == TaskStatus.PARKED:
        until = meta.park.until
        if until is not None and until > now:
            return f"parked until {_clock(until)} on {meta.park.adapter or '-'}"
    if state.status == TaskStatus.QUEUED:
        not_before = meta.retry.not_before
        if not_before is not None and not_before > now:
            return f"retry at {_clock(not_before)}"
        if meta.hold.held:  # a budget without room (``scheduler.spending``)
            return meta.hold.held
        if meta.hold.radar_hold:  # a live collision on its files (radar: sequence)
            return meta.hold.radar_hold
    if state.status in (TaskStatus.QUEUED, TaskStatus.PARKED):
        done = TaskStatus.DONE
        deps = [d for d in depends_on if (s := states.get(d)) is None or s.status != done]
        if deps:
            return f"after {', '.join(deps)}"
    return None


def dependencies(options: Mapping[str, Any]) -> dict[str, list[str]]:
    """Each task's ``depends_on``, from a session's options (``TASKS_OPTION``)."""
    found: dict[str, list[str]] = {}
    for raw in options.get(TASKS_OPTION, []):
        if isinstance(raw, Mapping) and isinstance(raw.get("id"), str):
            found[raw["id"]] = [d for d in raw.get("depends_on") or [] if isinstance(d, str)]
    return found


def _clock(moment: datetime) -> str:
    return moment.astimezone().strftime("%H:%M:%S")


def held_for_checkout(
    task_id: str, depends_on: Mapping[str, Sequence[str]], states: Mapping[str, TaskState]
) -> bool:
    """The task ended ``waiting_for_checkout``, or waits (queued, parked) for a dependency
    that did, directly or further up: nothing in this run can move it any more; `council
    resume` takes it up once the checkout is cleared."""
    seen: set[str] = set()
    todo = [task_id]
    while todo:
        current = todo.pop()
        state = states.get(current)
        if current in seen or state is None:
            continue
        seen.add(current)
        if state.status == TaskStatus.WAITING_FOR_CHECKOUT:
            return True
        if current == task_id and state.status not in (TaskStatus.QUEUED, TaskStatus.PARKED):
            return False
        todo += depends_on.get(current, [])
    return False


def broken_dependency(task: TaskConfig, states: Mapping[str, TaskState]) -> str | None:
    """Why ``task`` can never start (a dependency ended without merging), or None."""
    for dep in task.depends_on:
        state = states.get(dep)
        if (
            state is not None
            and state.status in TERMINAL_TASK_STATUSES
            and state.status != TaskStatus.DONE
        ):
            return f"dependency {dep!r} ended {state.status}"
    return None


def first_phase(config: RunConfig, task: TaskConfig, state: TaskState | None) -> str:
    """The phase an attempt starts in: the first one not recorded completed."""
    phases = config.phases_for(task)
    done = state.phases if state is not None else {}
    for phase in phases:
        record = done.get(phase.name)
        if record is None or record.status != "completed":
            return phase.name
    return phases[-1].name


def choose_adapter(
    chain: Sequence[str],
    parked: Mapping[str, datetime],
    now: datetime,
    sticky: str | None = None,
) -> str | None:
    """The adapter for the next attempt, or None while every candidate is parked."""
    if sticky is not None:
        until = parked.get(sticky)
        return sticky if until is None or until <= now else None
    for name in chain:
        until = parked.get(name)
        if until is None or until <= now:
            return name
    return None


class CheckoutEnd:
    """The checkout wait's say in how a run ends (``scheduler.ending.EndPart``): a task that
    ended ``waiting_for_checkout``, or waits behind one (``held_for_checkout``), no longer
    holds the run; a run that ends with one ends ``interrupted`` on the checkpoint
    ``waiting_for_checkout``, so that ``council resume`` lands it."""

    checkpoint = "waiting_for_checkout"
    shared = False

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        return held_for_checkout(task_id, depends_on, states)

    def unlooked(self, state: TaskState) -> bool:
        return False

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return {s.task_id for s in states.values() if s.status == TaskStatus.WAITING_FOR_CHECKOUT}
