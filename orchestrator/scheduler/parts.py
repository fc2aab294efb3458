"""The seam: how a feature takes part in a run without the scheduler knowing it by name.

A feature of the run (team mode, the pull requests, the budgets, the collision radar, the
checkout wait) is a ``RunPart`` in a room of its own. The run lists its parts in one place
(``part_list``); the scheduler, the dispatcher and the attempt's modules call ``RunParts`` at
fixed points and import no feature. A part overrides the points it takes part in; every
default does nothing and decides nothing.

- The attempt's points (``attempts.part.AttemptPart``, which ``RunPart`` extends): an attempt's
  start, its claim, a worktree adopted or forked, a phase's end, its landing, its end.
- ``beside(wake, down)``: a loop the part runs beside the tick for as long as the run ticks
  (``wake`` ends the tick's nap; ``down`` says the store could not be reached); None: none.
- ``tick(states)``: each tick, once the task records are read.
- ``dispatch(task, state)``: before an attempt is started, why ``task`` waits (None: it does
  not), with its record as the part left it (a part may keep why in the record).
- ``stands_on(task, states)``: the dependencies of ``task`` the part counts as ready to build
  on though not merged (a stacked pull request's: those open for review).
- ``marks()``: per task id, a word the run's board shows beside the task.
- ``notes()``: per task id, what the part says of the task on the board's line (its session's
  services: ``web ready, db failed``).
- The run's end (``ending.EndPart``): ``checkpoint``, ``shared``, ``waits``, ``unlooked``,
  ``holds``; and ``end_when(ends)``: the end decided under whatever the part must hold still
  while it is (the pull requests: no pass over them under way, none after).
- ``left()``: the run's loop is over, this workstation leaves (shielded).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Coroutine, Mapping, Sequence
from typing import Any

import anyio

from orchestrator.config.task import TaskConfig
from orchestrator.errors import StoreUnavailable
from orchestrator.models import TaskState
from orchestrator.scheduler.attempts.part import AttemptPart, AttemptParts
from orchestrator.scheduler.ending import EndPart

__all__ = ["EndOnly", "Loop", "RunPart", "RunParts"]

Loop = Callable[[anyio.CancelScope], Coroutine[Any, Any, None]]


class RunPart(AttemptPart):
    """A part that takes part in nothing (module doc): a feature overrides what it does."""

    checkpoint = ""
    shared = False

    def beside(
        self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
    ) -> Loop | None:
        return None

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        return None

    async def dispatch(self, task: TaskConfig, state: TaskState) -> tuple[TaskState, str | None]:
        return state, None

    def stands_on(self, task: TaskConfig, states: Mapping[str, TaskState]) -> frozenset[str]:
        return frozenset()

    def marks(self) -> Mapping[str, str]:
        return {}

    def notes(self) -> Mapping[str, str]:
        return {}

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        return False

    def unlooked(self, state: TaskState) -> bool:
        return False

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return set()

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        return await ends()

    async def left(self) -> None:
        return None


class EndOnly(RunPart):
    """A part that only has a say in the run's end (a pure rule's ``ending.EndPart``)."""

    def __init__(self, end: EndPart) -> None:
        self._end = end
        self.checkpoint = end.checkpoint
        self.shared = end.shared

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        return self._end.waits(task_id, states, depends_on)

    def unlooked(self, state: TaskState) -> bool:
        return self._end.unlooked(state)

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return self._end.holds(states)


class RunParts(AttemptParts):
    """The run's parts, each asked in the order ``part_list`` gives them."""

    def __init__(self, parts: Sequence[RunPart]) -> None:
        super().__init__(parts)
        self.parts: tuple[RunPart, ...] = tuple(parts)

    def beside(
        self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
    ) -> list[Loop]:
        loops = (part.beside(wake, down) for part in self.parts)
        return [loop for loop in loops if loop is not None]

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        for part in self.parts:
            await part.tick(states)

    async def dispatch(self, task: TaskConfig, state: TaskState) -> tuple[TaskState, str | None]:
        for part in self.parts:
            state, reason = await part.dispatch(task, state)
            if reason is not None:
                return state, reason
        return state, None

    def stands_on(self, task: TaskConfig, states: Mapping[str, TaskState]) -> frozenset[str]:
        """The dependencies of ``task`` some part counts as ready to build on."""
        found: frozenset[str] = frozenset()
        for part in self.parts:
            found |= part.stands_on(task, states)
        return found

    def marks(self) -> dict[str, str]:
        marks: dict[str, str] = {}
        for part in self.parts:
            marks.update(part.marks())
        return marks

    def notes(self) -> dict[str, str]:
        """Per task id, every part's note on it, joined (``; ``)."""
        notes: dict[str, list[str]] = {}
        for part in self.parts:
            for task_id, said in part.notes().items():
                notes.setdefault(task_id, []).append(said)
        return {task_id: "; ".join(said) for task_id, said in notes.items()}

    async def left(self) -> None:
        """The run's loop is over (shielded): every part hears it."""
        for part in self.parts:
            await part.left()

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        """``ends`` decided inside every part's ``end_when``, the first part outermost."""
        decide = ends
        for part in reversed(self.parts):
            decide = _inside(part, decide)
        return await decide()


def _inside(part: RunPart, ends: Callable[[], Awaitable[bool]]) -> Callable[[], Awaitable[bool]]:
    async def decide() -> bool:
        return await part.end_when(ends)

    return decide
