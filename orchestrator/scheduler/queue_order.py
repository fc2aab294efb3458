"""The run's unfinished tasks in dispatch order, kept between the dispatcher's passes.

The order is ``queue.ordered``'s (priority, then age, then the config's order), over the tasks
with a record that has not ended. A pass takes it as it is and stops at the first task it
cannot use a slot for, so a run of 10,000 tasks costs a pass what it looks at, not a sort of
every task; the order itself moves only where a record changed (``changed``: the ids the
scheduler's view read again, or None after a full read) or the run's tasks did. ``placed``
counts the tasks placed, for the tests that hold the order to this.
"""

from __future__ import annotations

from bisect import bisect_left, insort
from collections.abc import Collection, Iterator, Mapping
from datetime import datetime

from orchestrator.config.task import TaskConfig
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState

__all__ = ["QueueOrder"]

_Key = tuple[int, datetime, int, str]  # -priority, created, position, id


class QueueOrder:
    def __init__(self) -> None:
        self._keys: list[_Key] = []  # ascending: the dispatch order
        self._key_of: dict[str, _Key] = {}
        self._position: dict[str, int] = {}
        self._indexed = (0, -1)  # the run's tasks it was placed for: their mapping, how many
        self._changed: set[str] = set()
        self._everything = True
        self.placed = 0  # tasks placed, ever

    def changed(self, task_ids: Collection[str] | None) -> None:
        """The records of ``task_ids`` may have changed (None: any record may have)."""
        if task_ids is None:
            self._everything = True
        else:
            self._changed.update(task_ids)

    def tasks(
        self, tasks: Mapping[str, TaskConfig], states: Mapping[str, TaskState]
    ) -> Iterator[str]:
        """The ids of ``tasks`` with an unfinished record in ``states``, in dispatch order,
        one at a time (a pass stops where it cannot go on); the order is not changed until
        the next call."""
        if self._everything or (id(tasks), len(tasks)) != self._indexed:
            self._indexed = (id(tasks), len(tasks))
            self._position = {task_id: n for n, task_id in enumerate(tasks)}
            self._key_of = {}
            for task_id, task in tasks.items():
                key = self._key(task_id, task, states.get(task_id))
                if key is not None:
                    self._key_of[task_id] = key
            self._keys = sorted(self._key_of.values())
        else:
            for task_id in self._changed:
                self._place(task_id, tasks.get(task_id), states.get(task_id))
        self._everything, self._changed = False, set()
        return (key[3] for key in self._keys)

    def _key(self, task_id: str, task: TaskConfig | None, state: TaskState | None) -> _Key | None:
        if task is None or state is None or state.status in TERMINAL_TASK_STATUSES:
            return None
        self.placed += 1
        return (-task.priority, state.created_at, self._position[task_id], task_id)

    def _place(self, task_id: str, task: TaskConfig | None, state: TaskState | None) -> None:
        old = self._key_of.pop(task_id, None)
        if old is not None:
            del self._keys[bisect_left(self._keys, old)]
        key = self._key(task_id, task, state)
        if key is not None:
            insort(self._keys, key)
            self._key_of[task_id] = key
