"""The pull requests of a run that lands by merge (``landing.via: merge``): what an earlier run
of the config opened (its tasks ``in_review``, or a feedback round they asked for) is still in
the records, and ``part.PullsPart`` answers for them here, from the records alone.

Such a run has no loop over the pull requests (``PullsPart.beside``), so none is looked at and
none is opened: a task ``in_review`` waits on a person when the run has no forge to follow it
with (``council resume`` with ``landing.via: pull_request`` follows it again), a feedback
round's branch is checked out again as in a run that lands through pull requests, and a task
whose pull request is recorded landed through the forge (no ``Council-Task`` merge to find).
The same answers ``follower.PullFollower`` and ``landing.PullLanding`` give in such a run, without
their modules (the forge's client, the public text, the pull request events): a plain run does
not import them (``tests/cli/test_cli_startup.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.pulls.recorded import adopt_for_feedback, feedback_of, recorded_pull
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["LeftoverPulls"]


class LeftoverPulls:
    """``PullsPart``'s landing and follower in a run that lands by merge (module doc)."""

    def __init__(self, run: RunContext) -> None:
        self._run = run

    # -- the landing's points ------------------------------------------------------------

    async def starting(self, attempt: Attempt, state: TaskState) -> None:
        attempt.feedback = feedback_of(state)

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        return await adopt_for_feedback(self._run, attempt, session_id, state)

    async def lands(self, attempt: Attempt) -> bool:
        return False  # through the merge queue

    def landed_elsewhere(self, state: TaskState) -> bool:
        return recorded_pull(state.metadata) is not None  # the forge's: no Council-Task merge

    # -- the follower's --------------------------------------------------------------------

    async def end_when(self, settled: Callable[[], Awaitable[bool]]) -> bool:
        return await settled()  # no pass over the pull requests to wait for

    async def follow(self, *, only_unlooked: bool = False) -> bool:
        return False  # no pass: nothing changed (``PullsPart.beside`` starts no loop)

    def unlooked(self, state: TaskState) -> bool:
        return False  # nothing looks at them in this run

    def waits_on_person(self, state: TaskState) -> bool:
        """An ``in_review`` task waits on a person when the run has no forge to follow it with;
        with one, only this run's own look could say so, and there is none."""
        return self._run.services.forge is None and state.status == TaskStatus.IN_REVIEW
