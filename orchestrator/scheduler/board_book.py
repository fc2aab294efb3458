"""The live board kept between looks: a task's line is built again only when what it is built
from changed, so a look at a run of 10,000 tasks costs what changed since the last one, not a
line per task (``council run`` looks four times a second).

What a line is built from (``board``): the task's record as the scheduler's last tick read it,
the reason the dispatcher's last pass gave (``Dispatcher.waits``, which holds the tasks that
pass looked at, never every task), the attempts in flight, the parts' marks and notes. The
``BoardBook`` is told which records changed (``changed``: the ids the scheduler's view read
again, or everything after a full read) and finds the rest itself from what it kept: the
reasons, marks and notes given last time (the dispatcher's few against the few before), the
attempts in flight then and now, the tasks that wait on a changed one (``depends_on``), and the
timed waits that end (a park, a retry's back-off: ``queue.wait_ends``). A queued task the
dispatcher did not look at says what its record holds it for (``queue.wait_reason``: ``after
add-cli``, ``parked until 14:03:10 on claude``), read when its line is built.

The lines are indexed by kind (``TaskLine.kind``: ``waiting`` is a queued task with a reason),
each kind's tasks in the run's order, so ``view(room)`` gives the lines a screen ``room`` rows
high shows and what it folds, and the counts of the headline, without going over the others.
``built`` counts the lines built, for the tests that hold the board to this.
"""

from __future__ import annotations

import heapq
import time
from bisect import bisect_left, insort
from collections import Counter
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, replace

from orchestrator.config.task import TaskConfig
from orchestrator.models import TaskState, utcnow
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.board import ENDED, TaskLine, in_flight, recorded
from orchestrator.scheduler.rules.queue import wait_ends, wait_reason

__all__ = ["BoardBook", "BoardView", "board", "fold_rank"]

# Which lines give way first when the screen is short: the lower, the longer a line stays.
_KEEP = {"running": 0, "merging": 0, "in_review": 1, "waiting": 1, "parked": 1, "queued": 2}
_FOLD_ORDER: tuple[str | int, ...] = ("ended", 2, 1)


def fold_rank(kind: str) -> str | int:
    """When a line of ``kind`` gives way on a short screen: ``ended`` first, then 2, then 1;
    0 never."""
    return "ended" if kind in ENDED else _KEEP.get(kind, 0)


@dataclass(frozen=True)
class BoardView:
    """What a screen shows of the board: ``lines`` in the run's order, ``folded`` the kinds
    and counts of the lines left out, ``kinds`` every line's kind counted, ``total`` lines."""

    lines: list[TaskLine]
    folded: Counter[str]
    kinds: Counter[str]
    total: int


class BoardBook:
    def __init__(self) -> None:
        self._ids: list[str] = []  # the run's tasks in order
        self._indexed = (0, -1)  # of this mapping of them, of this many
        self._tasks: dict[str, TaskConfig] = {}
        self._position: dict[str, int] = {}
        self._dependents: dict[str, list[str]] = {}
        self._lines: dict[str, TaskLine] = {}
        self._by_kind: dict[str, list[int]] = {}  # kind -> positions, ascending
        self._kind_of: dict[str, str] = {}
        self._changed: set[str] = set()
        self._everything = True
        self._waits: Mapping[str, str] = {}
        self._marks: Mapping[str, str] = {}
        self._notes: Mapping[str, str] = {}
        self._flying: set[str] = set()
        self._timed: list[tuple[float, str]] = []  # (when, task id): a timed wait ends
        self.built = 0  # lines built, ever

    @classmethod
    def of_lines(cls, lines: Iterable[TaskLine]) -> BoardBook:
        """A book of these lines as they are (for a board built elsewhere)."""
        book = cls()
        given = {line.task_id: line for line in lines}
        book._ids = list(given)
        book._position = {task_id: n for n, task_id in enumerate(book._ids)}
        for task_id, line in given.items():
            book._put(task_id, line)
        return book

    def changed(self, task_ids: Collection[str] | None) -> None:
        """The records of ``task_ids`` may have changed (None: any record may have)."""
        if task_ids is None:
            self._everything = True
        else:
            self._changed.update(task_ids)

    def look(
        self,
        tasks: Mapping[str, TaskConfig],
        states: Mapping[str, TaskState],
        attempts: Iterable[Attempt],
        waits: Mapping[str, str],
        marks: Mapping[str, str],
        notes: Mapping[str, str],
    ) -> None:
        """Bring the lines up to date (module doc)."""
        if self._everything or (id(tasks), len(tasks)) != self._indexed:
            self._index(tasks)
            todo: set[str] = set(self._ids)
        else:
            todo = {i for i in self._changed if i in self._position}
            for task_id in list(todo):
                todo.update(self._dependents.get(task_id, ()))
            todo.update(_differ(self._waits, waits))
            todo.update(_differ(self._marks, marks))
            todo.update(_differ(self._notes, notes))
            todo.update(self._flying)
            clock = time.time()
            while self._timed and self._timed[0][0] <= clock:
                todo.add(heapq.heappop(self._timed)[1])
            todo &= self._position.keys()  # a reason, mark or note of no task of the run
        self._changed = set()
        self._everything = False
        self._waits, self._marks, self._notes = dict(waits), dict(marks), dict(notes)
        flying: dict[str, list[Attempt]] = {}
        for attempt in attempts:
            flying.setdefault(attempt.group or attempt.key, []).append(attempt)
        now, stamp = time.monotonic(), utcnow()
        todo.update(task_id for task_id in flying if task_id in self._position)
        self._flying = set(flying) & self._position.keys()
        for task_id in todo:
            state = states.get(task_id)
            ours = flying.get(task_id)
            if ours:
                line = in_flight(task_id, ours, now)
            else:
                why = waits.get(task_id)
                if why is None and state is not None:
                    task = self._tasks[task_id]
                    why = wait_reason(task.depends_on, state, states, stamp)
                    ends = wait_ends(state, stamp)
                    if ends is not None:
                        heapq.heappush(self._timed, (ends.timestamp(), task_id))
                line = recorded(task_id, state, why)
            self._put(task_id, _marked(line, marks.get(task_id), notes.get(task_id)))

    def lines(self) -> list[TaskLine]:
        """Every task's line, in the run's order."""
        return [self._lines[task_id] for task_id in self._ids]

    def view(self, room: int) -> BoardView:
        """The lines a screen of ``room`` rows shows (module doc): every line when they all
        fit; else, first, the ended ones give way, then the queued ones, then those that wait,
        each kind's first ones first, leaving a row for the line that counts them."""
        kinds = Counter({kind: len(spots) for kind, spots in self._by_kind.items() if spots})
        total = len(self._ids)
        if total <= room:
            return BoardView(self.lines(), Counter(), kinds, total)
        by_rank: dict[str | int, list[str]] = {}
        for kind in kinds:
            by_rank.setdefault(fold_rank(kind), []).append(kind)
        left, quota = total, Counter[str | int]()
        for rank in _FOLD_ORDER:
            if left + 1 <= room:
                break
            count = sum(kinds[kind] for kind in by_rank.get(rank, ()))
            quota[rank] = min(count, left + 1 - room)
            left -= quota[rank]
        shown: list[int] = []
        folded: Counter[str] = Counter()
        for rank, members in by_rank.items():
            count = sum(kinds[kind] for kind in members)
            keep = count - quota[rank]
            # The last ``keep`` of the rank in the run's order: merged from each kind's end.
            ends = heapq.merge(*(reversed(self._by_kind[kind]) for kind in members), reverse=True)
            kept = [position for _, position in zip(range(keep), ends, strict=False)]
            shown.extend(kept)
            for kind in members:
                spots = self._by_kind[kind]
                # Of this kind, those at or after the rank's first kept position stay.
                stays = len(spots) - bisect_left(spots, kept[-1]) if kept else 0
                if kinds[kind] > stays:
                    folded[kind] = kinds[kind] - stays
        shown.sort()
        return BoardView([self._lines[self._ids[p]] for p in shown], folded, kinds, total)

    def _index(self, tasks: Mapping[str, TaskConfig]) -> None:
        self._indexed = (id(tasks), len(tasks))
        self._ids = list(tasks)
        self._tasks = dict(tasks)
        self._position = {task_id: n for n, task_id in enumerate(self._ids)}
        self._dependents = {}
        for task in tasks.values():
            for dep in task.depends_on:
                self._dependents.setdefault(dep, []).append(task.id)
        self._lines = {}
        self._by_kind = {}
        self._kind_of = {}
        self._timed = []

    def _put(self, task_id: str, line: TaskLine) -> None:
        self.built += 1
        self._lines[task_id] = line
        kind, position = line.kind, self._position[task_id]
        old = self._kind_of.get(task_id)
        if old == kind:
            return
        if old is not None:
            spots = self._by_kind[old]
            del spots[bisect_left(spots, position)]
        insort(self._by_kind.setdefault(kind, []), position)
        self._kind_of[task_id] = kind


def board(
    tasks: Iterable[TaskConfig],
    states: Mapping[str, TaskState],
    attempts: Iterable[Attempt],
    waits: Mapping[str, str],
    marks: Mapping[str, str] | None = None,
    notes: Mapping[str, str] | None = None,
) -> list[TaskLine]:
    """A line per task of ``tasks``, in their order, as a first look of a ``BoardBook`` builds
    them; a council task's candidates in flight show on its line; ``marks``: the collision
    radar's, by task (``radar.warning.marks``); ``notes``: the parts' notes of the tasks in
    flight (``parts.RunPart.notes``)."""
    book = BoardBook()
    book.look({task.id: task for task in tasks}, states, attempts, waits, marks or {}, notes or {})
    return book.lines()


def _differ(before: Mapping[str, str], now: Mapping[str, str]) -> set[str]:
    """The keys whose value is not the same in both."""
    return {k for k in before.keys() | now.keys() if before.get(k) != now.get(k)}


def _marked(line: TaskLine, mark: str | None, note: str | None) -> TaskLine:
    if mark is None and note is None:
        return line
    return replace(line, collision=mark or line.collision, note=note or line.note)
