"""The pull requests as a part of the run (``landing.via: pull_request``), over
``PullFollower``: their loop beside the tick, and their say in how the run ends.

- **The loop** (``loop``): the in-review tasks' pull requests followed every
  ``landing.poll`` seconds, and at once when one was opened (``nudge``: the tick nudges when
  a task's pull request has not been looked at yet); a change wakes the tick. A nudge between
  two full passes looks at the pull requests just opened only (a full pass each time another
  opened would read the earlier ones far more often than every ``landing.poll``), and the full
  passes keep their pace whatever the nudges.
- **The run's end** (``ending.EndPart``): a task ``in_review`` whose pull request waits for a
  person (a review, a merge by hand, failing checks), as this run's own look found it, or one
  that waits behind it, waits for that person and does not hold ``council run`` open; a pull
  request no pass has tried yet (just pushed, or a cancelled task's not yet closed) holds the
  run open until a pass has; a run that ends with a task ``in_review`` ends ``interrupted`` on
  the checkpoint ``in_review``, and ``council resume`` follows its pull request again.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence

import anyio

from orchestrator.errors import StoreUnavailable
from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.ending import after_waiting
from orchestrator.scheduler.pull_follower import PullFollower

__all__ = ["PullsPart"]


class PullsPart:
    checkpoint = "in_review"
    shared = False

    def __init__(self, pulls: PullFollower, every: float) -> None:
        self._pulls = pulls
        self._every = every
        self._nudge = anyio.Event()

    def nudge(self, states: Iterable[TaskState]) -> None:
        """Look at once when a task's pull request has not been looked at yet."""
        if any(self._pulls.unlooked(state) for state in states):
            self._nudge.set()

    async def loop(
        self,
        scope: anyio.CancelScope,
        wake: Callable[[], None],
        down: Callable[[StoreUnavailable], None],
    ) -> None:
        """Follow the pull requests until ``scope`` is cancelled; ``wake`` the tick on a
        change; ``down``: the store could not be reached (the next pass tries again)."""
        due = anyio.current_time()  # of the next pass over every pull request
        with scope:
            while True:
                full = anyio.current_time() >= due
                if full:
                    due = anyio.current_time() + self._every
                try:
                    if await self._pulls.follow(only_unlooked=not full):
                        wake()
                except StoreUnavailable as exc:
                    down(exc)
                with anyio.move_on_after(max(0.0, due - anyio.current_time())):
                    await self._nudge.wait()
                self._nudge = anyio.Event()

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        state, person = states.get(task_id), self._pulls.waits_on_person
        return (state is not None and person(state)) or after_waiting(
            task_id, depends_on, states, person
        )

    def unlooked(self, state: TaskState) -> bool:
        return self._pulls.unlooked(state)

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return {s.task_id for s in states.values() if s.status == TaskStatus.IN_REVIEW}
