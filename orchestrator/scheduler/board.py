"""The run as a person watching it wants to see it: every task, one line each, with what it
is doing or why it waits.

Built from what the scheduler holds anyway (the attempts in flight, its view of the task
records, the reasons its last dispatch pass left each task where it was), so drawing it reads
no record and starts no process, however often a live view asks.
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

from orchestrator.config.task import TaskConfig
from orchestrator.models import ClaimStatus, TaskState, TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt

__all__ = ["TaskLine", "board"]


@dataclass(frozen=True)
class TaskLine:
    """One task now. ``status`` is the task's status, but ``running`` or ``merging`` for one
    in flight here (``merging``: its CLI work is over, it is being landed); ``detail`` is the
    running CLI's last message, why a waiting task waits, or how an ended one ended."""

    task_id: str
    status: str
    phase: str | None = None
    adapter: str | None = None
    elapsed: float | None = None  # seconds the attempt in flight has run
    detail: str = ""
    collision: str = ""  # the collision radar's mark: ``collides with b on x.py (conflict)``
    note: str = ""  # what the run's parts say of it: ``services: web ready``


def board(
    tasks: Iterable[TaskConfig],
    states: Mapping[str, TaskState],
    attempts: Iterable[Attempt],
    waits: Mapping[str, str],
    marks: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> list[TaskLine]:
    """A line per task of ``tasks``, in their order; a council task's candidates in flight
    show on its line; ``marks``: the collision radar's, by task (``radar.warning.marks``);
    ``notes``: the parts' notes of the tasks in flight (``parts.RunPart.notes``)."""
    now = time.monotonic()
    flying: dict[str, list[Attempt]] = {}
    for attempt in attempts:
        flying.setdefault(attempt.group or attempt.key, []).append(attempt)
    lines = []
    for task in tasks:
        ours = flying.get(task.id, [])
        if ours:
            lines.append(_in_flight(task.id, ours, now))
        else:
            lines.append(_recorded(task.id, states.get(task.id), waits.get(task.id)))
    if marks:
        lines = [replace(x, collision=marks[x.task_id]) if x.task_id in marks else x for x in lines]
    if notes:
        lines = [replace(x, note=notes[x.task_id]) if x.task_id in notes else x for x in lines]
    return lines


def _in_flight(task_id: str, attempts: list[Attempt], now: float) -> TaskLine:
    main = next((a for a in attempts if a.key == task_id), None)
    if main is None:  # a council task whose candidates run
        named = ", ".join(f"{a.key} ({a.phase or 'merging'})" for a in attempts)
        first = min(a.started for a in attempts)
        return TaskLine(task_id, "running", None, None, now - first, f"candidates: {named}")
    status = "merging" if main.slot_free else "running"
    detail = main.waiting or main.last_message
    return TaskLine(task_id, status, main.phase, main.adapter, now - main.started, detail)


def _recorded(task_id: str, state: TaskState | None, why: str | None) -> TaskLine:
    if state is None:
        return TaskLine(task_id, str(TaskStatus.QUEUED), detail=why or "")
    detail = why or ""
    if state.status == TaskStatus.DONE and state.merged_commit:
        detail = f"landed {state.merged_commit[:12]}"
    elif state.status in (TaskStatus.FAILED, TaskStatus.CONFLICT, TaskStatus.CANCELLED):
        detail = state.error or ""
    elif state.claim is not None and state.claim.status == ClaimStatus.ACTIVE and not detail:
        # Held, but not by an attempt of ours: in a team, another workstation has it.
        detail = f"on {':'.join(state.claim.holder.split(':')[:2])}"
    return TaskLine(
        task_id, str(state.status), state.current_phase, state.adapter or None, detail=detail
    )
