"""The run's decision to end and the pull request follower's passes never overlap
(``PullFollower.end_when``): a pass under way (which may send a task back to the queue for a
feedback round) is finished before the run reads its tasks to decide, and no pass runs once it
decided. Found by the crash sweep under load: a run ended on what it read just before the
follower wrote a feedback round, leaving the task queued with nothing to run it."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any, cast

import anyio

from orchestrator.models import TaskState
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.pulls.follower import PullFollower


class _Store:
    """Lists the run's tasks (none) once ``release`` is set; counts the passes."""

    def __init__(self) -> None:
        self.release = anyio.Event()
        self.entered = anyio.Event()
        self.passes = 0

    async def list_tasks(self, session_id: str) -> list[TaskState]:
        self.passes += 1
        self.entered.set()
        await self.release.wait()
        return []


def _follower(store: _Store) -> PullFollower:
    services = SimpleNamespace(forge=object(), store=store)
    run = SimpleNamespace(services=services, session_id="s-1", tasks={})
    return PullFollower(cast(RunContext, run))


def test_the_end_is_decided_after_the_pass_under_way_and_no_pass_runs_after_it() -> None:
    async def scenario() -> list[Any]:
        store = _Store()
        follower = _follower(store)
        said: list[Any] = []

        async def decide() -> bool:
            said.append(("decided", store.release.is_set()))
            return True

        async with anyio.create_task_group() as group:
            group.start_soon(follower.follow)
            await store.entered.wait()  # a pass is under way

            async def end() -> None:
                said.append(("ended", await follower.end_when(decide)))

            group.start_soon(end)
            for _ in range(20):
                await anyio.sleep(0)
            said.append(("still passing", not said))
            store.release.set()
        said.append(("a pass after the end", await follower.follow(), store.passes))
        return said

    assert anyio.run(scenario) == [
        ("still passing", True),  # the decision waited for the pass
        ("decided", True),
        ("ended", True),
        ("a pass after the end", False, 1),  # no pass: the store was not read again
    ]


def test_a_run_that_does_not_end_keeps_following() -> None:
    async def scenario() -> tuple[bool, int]:
        store = _Store()
        store.release.set()
        follower = _follower(store)

        async def not_yet() -> bool:
            return False

        ended = await follower.end_when(not_yet)
        await follower.follow()
        return ended, store.passes

    assert anyio.run(scenario) == (False, 1)
