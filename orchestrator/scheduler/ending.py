"""How a run ends: one decision, from what every part says, under one read of the tasks.

A part (the budgets, the checkout wait, the pull requests) says, for the run's end only:

- ``waits(task_id, states, depends_on)``: the task waits for something outside this run (a budget
  raised, a person's review, the user's checkout), itself or through a dependency that does;
  nothing this run does can move it, so it does not hold the run open;
- ``unlooked(state)``: a task that looks settled but that the part has still to look at (a
  pull request no pass has tried yet): it holds the run open;
- ``holds(states)``: the tasks the part holds as the run ends; the first part that holds
  any names the session's checkpoint (``checkpoint``), and the run ends ``interrupted`` so
  that ``council resume`` goes on. ``shared``: what it holds, it holds for every workstation
  of a team (a budget), so a team's workstation ends the session on it instead of leaving
  it to the others.

``settled`` is whether the run may end; ``decide`` is how it ends. Both read only the
``states`` they are given, so the session's end status always agrees with one read of the
tasks: never ``failed`` without a failed (or conflicting) task, never ``completed`` with a
task not done, whatever was re-queued between the tick that found the run settled and the
end (the end reads again and decides from that read alone).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from orchestrator.models import TERMINAL_TASK_STATUSES, SessionStatus, TaskState, TaskStatus

__all__ = ["EndPart", "RunEnd", "after_waiting", "decide", "settled"]

_DONE_OR_CANCELLED = frozenset({TaskStatus.DONE, TaskStatus.CANCELLED})
_WAITING = (TaskStatus.QUEUED, TaskStatus.PARKED)


class EndPart(Protocol):
    """A part's say in the run's end (see the module's docstring)."""

    @property
    def checkpoint(self) -> str: ...

    @property
    def shared(self) -> bool: ...

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool: ...

    def unlooked(self, state: TaskState) -> bool: ...

    def holds(self, states: Mapping[str, TaskState]) -> set[str]: ...


@dataclass(frozen=True)
class RunEnd:
    """How the run ends: ``status`` with ``checkpoint`` (None: no checkpoint); ``status``
    None: this workstation leaves a team's session other workstations still work on."""

    status: SessionStatus | None
    checkpoint: str | None = None

    @property
    def leaves(self) -> bool:
        return self.status is None


def settled(
    task_ids: Collection[str],
    states: Mapping[str, TaskState],
    parts: Sequence[EndPart],
    depends_on: Mapping[str, Sequence[str]],
) -> bool:
    """Every task is settled: recorded, and terminal with no part still to look at it, or
    waiting (by some part's word) for something outside the run (``depends_on``: each task's
    dependencies, for a task that waits behind one that waits)."""
    for task_id in task_ids:
        state = states.get(task_id)
        if state is None:
            return False
        ended = state.status in TERMINAL_TASK_STATUSES and not any(
            part.unlooked(state) for part in parts
        )
        if not ended and not any(part.waits(task_id, states, depends_on) for part in parts):
            return False
    return True


def decide(
    states: Mapping[str, TaskState],
    parts: Sequence[EndPart],
    *,
    team: bool,
    seen: Mapping[str, TaskState] | None = None,
) -> RunEnd:
    """The session's end status from ``states`` (one read of its tasks) alone; the parts look
    at ``seen`` (the same read with what else the run follows: a council task's candidates)."""
    shared: set[str] = set()
    held: list[tuple[EndPart, set[str]]] = []
    for part in parts:
        ids = part.holds(states if seen is None else seen)
        held.append((part, ids))
        if part.shared:
            shared |= ids
    unfinished = [s for s in states.values() if s.status not in TERMINAL_TASK_STATUSES]
    if team and any(s.task_id not in shared for s in unfinished):
        # A team session with tasks other workstations go on with: theirs to finish.
        return RunEnd(None)
    for part, ids in held:
        if ids:
            return RunEnd(SessionStatus.INTERRUPTED, part.checkpoint)
    if unfinished:
        # Work left to do (a task sent back to the queue as the run ended): never "failed"
        # with nothing failed; `council resume` runs it.
        return RunEnd(SessionStatus.INTERRUPTED, "unfinished")
    if all(s.status == TaskStatus.DONE for s in states.values()):
        return RunEnd(SessionStatus.COMPLETED)
    if all(s.status in _DONE_OR_CANCELLED for s in states.values()):
        return RunEnd(SessionStatus.CANCELLED)  # what happened: nothing failed, some cancelled
    return RunEnd(SessionStatus.FAILED)


def after_waiting(
    task_id: str,
    depends_on: Mapping[str, Sequence[str]],
    states: Mapping[str, TaskState],
    waits: Callable[[TaskState], bool],
) -> bool:
    """A task that waits (queued, parked) for a dependency that ``waits``, directly or
    further up: nothing in this run can start it."""
    state = states.get(task_id)
    if state is None or state.status not in _WAITING:
        return False
    seen: set[str] = set()
    todo = list(depends_on.get(task_id, []))
    while todo:
        current = todo.pop()
        dep = states.get(current)
        if current in seen or dep is None:
            continue
        seen.add(current)
        if waits(dep):
            return True
        if dep.status in _WAITING:
            todo += depends_on.get(current, [])
    return False
