"""The seam a feature takes part in a run through (``scheduler.parts``, ``attempts.part``).

How the parts are asked (order, first answer, everyone hears the end), and a part added the
way a new capability is, one line in ``part_list``, seen at every point of a real run: real
store, worktrees, locks and merge queue, nothing in the scheduler changed for it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config.task import TaskConfig
from orchestrator.council import Council
from orchestrator.errors import StoreUnavailable
from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler import part_list
from orchestrator.scheduler import scheduler as scheduler_module
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import EndOnly, Loop, RunPart, RunParts
from orchestrator.scheduler.rules.queue import CheckoutEnd
from orchestrator.workflow.task_run import TaskRun, WorkflowResult
from orchestrator.worktrees.models import SessionWorktree
from tests.support.scheduler_helpers import (
    Probe,
    edit_and_commit,
    merged_tasks,
    new_repo,
    run_config,
)


def _attempt(task_id: str = "t") -> Attempt:
    return Attempt(TaskConfig(id=task_id, prompt="p"), "alpha", "build", 1, frozenset())


class Says(RunPart):
    """A part that answers with what it is given, and notes what it was asked."""

    def __init__(
        self, name: str, heard: list[str], *, reason: str | None = None, fail: bool = False
    ) -> None:
        self.name, self.heard, self.reason, self.fail = name, heard, reason, fail

    async def claimed(self, attempt: Attempt) -> str | None:
        self.heard.append(f"{self.name}.claimed")
        return self.reason

    async def dispatch(self, task: TaskConfig, state: TaskState) -> tuple[TaskState, str | None]:
        self.heard.append(f"{self.name}.dispatch")
        return state, self.reason

    async def ended(self, attempt: Attempt) -> None:
        self.heard.append(f"{self.name}.ended")
        if self.fail:
            raise StoreUnavailable(f"{self.name} cannot reach the store")

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        self.heard.append(f"{self.name}.enter")
        try:
            return await ends()
        finally:
            self.heard.append(f"{self.name}.exit")

    def marks(self) -> Mapping[str, str]:
        return {"t": self.name}


async def test_the_first_answer_is_taken_and_the_parts_after_it_are_not_asked() -> None:
    heard: list[str] = []
    parts = RunParts([Says("a", heard), Says("b", heard, reason="b holds"), Says("c", heard)])

    assert await parts.claimed(_attempt()) == "b holds"
    state = TaskState(task_id="t", session_id="s")
    assert await parts.dispatch(TaskConfig(id="t", prompt="p"), state) == (state, "b holds")
    assert heard == ["a.claimed", "b.claimed", "a.dispatch", "b.dispatch"]
    assert parts.marks() == {"t": "c"}  # every part's marks, a later one over an earlier


async def test_every_part_hears_an_attempt_end_and_the_first_error_is_raised_after() -> None:
    heard: list[str] = []
    parts = RunParts([Says("a", heard, fail=True), Says("b", heard, fail=True), Says("c", heard)])

    with pytest.raises(StoreUnavailable, match="a cannot reach"):
        await parts.ended(_attempt())

    assert heard == ["a.ended", "b.ended", "c.ended"]


async def test_the_end_is_decided_inside_every_part_the_first_outermost() -> None:
    heard: list[str] = []
    parts = RunParts([Says("a", heard), RunPart(), Says("b", heard)])

    async def ends() -> bool:
        heard.append("decided")
        return True

    assert await parts.end_when(ends) is True
    assert heard == ["a.enter", "b.enter", "decided", "b.exit", "a.exit"]


async def test_a_part_that_does_nothing_at_a_point_costs_nothing_there() -> None:
    class Loops(RunPart):
        def beside(
            self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
        ) -> Loop | None:
            async def loop(scope: anyio.CancelScope) -> None:
                return None

            return loop

    plain = RunParts([RunPart(), EndOnly(CheckoutEnd())])
    assert not plain.phase_listeners  # the workflow is given no phase-end hook
    assert plain.beside(lambda: None, lambda exc: None) == []
    assert await plain.adopt(_attempt(), "s", TaskState(task_id="t", session_id="s")) is None
    assert not await plain.lands(_attempt())
    assert len(RunParts([RunPart(), Loops()]).beside(lambda: None, lambda exc: None)) == 1
    # A pure rule keeps its say in the run's end through ``EndOnly``.
    waiting = TaskState(task_id="t", session_id="s", status=TaskStatus.WAITING_FOR_CHECKOUT)
    assert plain.parts[1].checkpoint == "waiting_for_checkout"
    assert plain.parts[1].holds({"t": waiting}) == {"t"}


class Watcher(RunPart):
    """A new capability of the run: it sees every point, and keeps task ``later`` waiting
    until task ``first`` is done (its own say in a dispatch)."""

    def __init__(self, run: RunContext) -> None:
        self.run = run
        self.points: list[tuple[str, str]] = []
        self.ticks = 0
        self.loops = 0
        self.gone = False
        self.decided = 0

    def _saw(self, point: str, attempt: Attempt) -> None:
        self.points.append((point, attempt.key))

    async def starting(self, attempt: Attempt, state: TaskState) -> None:
        self._saw("starting", attempt)

    async def claimed(self, attempt: Attempt) -> str | None:
        assert attempt.token, "asked once the claim is taken"
        self._saw("claimed", attempt)
        return None

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        self._saw("adopt", attempt)
        return None

    async def forking(self, attempt: Attempt) -> None:
        self._saw("forking", attempt)

    async def phase_ended(self, attempt: Attempt) -> None:
        self._saw("phase_ended", attempt)

    async def lands(self, attempt: Attempt) -> bool:
        self._saw("lands", attempt)
        return False  # the merge queue lands it

    async def ended(self, attempt: Attempt) -> None:
        self._saw("ended", attempt)

    def beside(
        self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
    ) -> Loop | None:
        async def loop(scope: anyio.CancelScope) -> None:
            with scope:
                while True:
                    self.loops += 1
                    await anyio.sleep(0.05)

        return loop

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        self.ticks += 1

    async def dispatch(self, task: TaskConfig, state: TaskState) -> tuple[TaskState, str | None]:
        if task.id != "later":
            return state, None
        first = await self.run.services.store.get_task_state("first")
        if first is not None and first.status == TaskStatus.DONE:
            return state, None
        return state, "waits for first (the watcher's word)"

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        self.decided += 1
        return await ends()

    async def left(self) -> None:
        self.gone = True


async def test_a_part_added_in_the_list_takes_part_in_a_real_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    watchers: list[Watcher] = []

    def with_watcher(run: RunContext, *args: Any) -> RunParts:
        parts = part_list.run_parts(run, *args)
        watchers.append(Watcher(run))
        return RunParts([*parts.parts, watchers[-1]])  # the one line a capability adds

    monkeypatch.setattr(scheduler_module, "run_parts", with_watcher)
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "later", "prompt": "p", "priority": 9},  # first in the queue, held by the part
        {"id": "first", "prompt": "p"},
    ]

    async def with_a_phase(run: TaskRun, call: int) -> WorkflowResult:
        result = await edit_and_commit(run, {f"out/{run.task.id}.txt": "x\n"})
        if run.on_phase_end is not None:
            await run.on_phase_end()
        return result

    probe = Probe(behave={"later": with_a_phase, "first": with_a_phase})
    async with Council(run_config(repo, tasks), workflow=probe) as council:
        report = await council.run()

    assert report.exit_code == 0 and report.totals.done == 2
    assert sorted(merged_tasks(repo)) == ["first", "later"]
    [watcher] = watchers
    order = ["starting", "claimed", "forking", "phase_ended", "lands", "ended"]
    for task_id in ("first", "later"):
        assert [p for p, key in watcher.points if key == task_id] == order
    # Its dispatch hold kept ``later`` back until ``first`` had landed, though it comes first.
    ends = [key for p, key in watcher.points if p == "ended"]
    starts = [key for p, key in watcher.points if p == "starting"]
    assert starts == ["first", "later"] and ends == ["first", "later"]
    assert probe.starts[0].task_id == "first"
    assert watcher.ticks >= 2 and watcher.loops >= 1 and watcher.decided >= 1
    assert watcher.gone  # the run's loop over: every part hears it
