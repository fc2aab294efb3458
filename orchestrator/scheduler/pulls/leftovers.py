"""The follower of a run that lands by merge (``landing.via: merge``): what an earlier run of the
config opened (its tasks ``in_review``) is still in the records, and ``part.PullsPart`` answers
for it here, from the records alone.

Such a run has no loop over the pull requests (``PullsPart.beside``), so none is looked at: a
task ``in_review`` waits on a person when the run has no forge to follow it with (``council
resume`` with ``landing.via: pull_request`` follows it again). The same answers
``follower.PullFollower`` gives in such a run, without its modules (the forge's client, the
public text, the pull request events): a plain run does not import them
(``tests/cli/test_cli_startup.py``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.context import RunContext

__all__ = ["LeftoverPulls"]


class LeftoverPulls:
    """``PullsPart``'s follower in a run that lands by merge (module doc)."""

    def __init__(self, run: RunContext) -> None:
        self._run = run

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
