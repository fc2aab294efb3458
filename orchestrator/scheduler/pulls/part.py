"""The pull requests as a part of the run (``landing.via: pull_request``;
``scheduler.parts.RunPart``), over ``PullFollower`` and ``PullLanding``: an attempt's work opened
as a pull request (``landing``), their loop beside the tick, and their say in how the run ends.

- **The loop** (``loop``): the in-review tasks' pull requests followed every
  ``landing.poll`` seconds, and at once when one was opened (``nudge``: the tick nudges when
  a task's pull request has not been looked at yet); a change wakes the tick. A nudge between
  two full passes looks at the pull requests just opened only (a full pass each time another
  opened would read the earlier ones far more often than every ``landing.poll``), and the full
  passes keep their pace whatever the nudges.
- **The run's end** (``ending.EndPart``): a task ``in_review`` whose pull request waits for a
  person (a review, a merge by hand, failing checks), as this run's own look found it, or one
  that waits behind it, waits for that person and does not hold ``council run`` open (but a
  stacked task that can start on the pull requests below it does not wait: ``pulls.stack``); a pull
  request no pass has tried yet (just pushed, or a cancelled task's not yet closed) holds the
  run open until a pass has; a run that ends with a task ``in_review`` ends ``interrupted`` on
  the checkpoint ``in_review``, and ``council resume`` follows its pull request again.

An attempt's feedback round and a landing through the forge are read from the task's record
(``recorded``). In a run that lands by merge, the work lands through the queue and the follower
is ``leftovers.LeftoverPulls``: the same answers from the records alone, without the forge's
modules.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from functools import partial
from typing import TYPE_CHECKING

import anyio

from orchestrator.errors import StoreUnavailable
from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.ending import after_waiting
from orchestrator.scheduler.parts import Loop, RunPart
from orchestrator.scheduler.pulls.leftovers import LeftoverPulls
from orchestrator.scheduler.pulls.recorded import adopt_for_feedback, feedback_of, recorded_pull
from orchestrator.scheduler.pulls.stack_view import open_for_review
from orchestrator.worktrees.models import SessionWorktree

if TYPE_CHECKING:
    from orchestrator.scheduler.pulls.follower import PullFollower
    from orchestrator.scheduler.pulls.landing import PullLanding

__all__ = ["PullsPart"]


class PullsPart(RunPart):
    checkpoint = "in_review"
    shared = False

    def __init__(self, run: RunContext, writes: AttemptWrites) -> None:
        self._run = run
        self._pulls: PullFollower | LeftoverPulls
        self._landing: PullLanding | None = None  # None: the work lands through the queue
        if run.services.config.landing.via == "pull_request":
            # The forge's modules: only a run that lands through pull requests imports them.
            from orchestrator.scheduler.pulls.follower import PullFollower
            from orchestrator.scheduler.pulls.landing import PullLanding

            self._pulls, self._landing = PullFollower(run), PullLanding(run, writes)
        else:  # what an earlier run's pull requests left in the records (``leftovers``)
            self._pulls = LeftoverPulls(run)
        self._every = run.services.config.landing.poll
        self._nudge = anyio.Event()

    # -- an attempt's points (from the task's record, ``recorded``; its landing ``PullLanding``)

    async def starting(self, attempt: Attempt, state: TaskState) -> None:
        attempt.feedback = feedback_of(state)

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        return await adopt_for_feedback(self._run, attempt, session_id, state)

    async def lands(self, attempt: Attempt) -> bool:
        return self._landing is not None and await self._landing.lands(attempt)

    def landed_elsewhere(self, state: TaskState) -> bool:
        return recorded_pull(state.metadata) is not None  # the forge's: no Council-Task merge

    # -- the run's points ----------------------------------------------------------------

    def beside(
        self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
    ) -> Loop | None:
        if self._run.services.config.landing.via != "pull_request":
            return None
        return partial(self.loop, wake=wake, down=down)

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        self.nudge(states.values())

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        """Decided while no pass over the pull requests is under way, and none after."""
        return await self._pulls.end_when(ends)

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
        if state is not None and person(state):
            return True
        if state is not None and self._stacks_now(state, states):
            return False  # it starts on the pull requests below it: nobody to wait for
        return after_waiting(task_id, depends_on, states, person)

    def _stacks_now(self, state: TaskState, states: Mapping[str, TaskState]) -> bool:
        """A stacked task (``landing.pulls: stacked``) ready to start on what it depends on:
        each dependency merged or open for review (``pulls.stack``)."""
        task = self._run.tasks.get(state.task_id)
        if task is None or state.status not in (TaskStatus.QUEUED, TaskStatus.PARKED):
            return False
        if not self._run.services.config.stacked(task):
            return False
        deps = [states.get(dep) for dep in task.depends_on]
        return any(open_for_review(d) for d in deps) and all(
            open_for_review(d) or (d is not None and d.status == TaskStatus.DONE) for d in deps
        )

    def unlooked(self, state: TaskState) -> bool:
        return self._pulls.unlooked(state)

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return {s.task_id for s in states.values() if s.status == TaskStatus.IN_REVIEW}
