"""An attempt's lifecycle: the transition table, checked on every move, and a real run's
attempts, which all end ``ENDED`` or ``LOST``."""

from __future__ import annotations

from collections import deque
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config.task import TaskConfig
from orchestrator.council import Council
from orchestrator.models import TaskStatus
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lifecycle import LIVE, MOVES, IllegalMove, Lifecycle, Stage
from orchestrator.workflow.task_run import TaskRun, WorkflowResult
from tests.support.scheduler_helpers import (
    Probe,
    edit_and_commit,
    failure,
    new_repo,
    run_config,
)

BACK = "release failed"  # ``Lifecycle.release_failed`` in a sequence of moves


def _path_to(stage: Stage) -> list[Stage]:
    """The shortest allowed moves from ``CLAIMING`` to ``stage``."""
    paths: dict[Stage, list[Stage]] = {Stage.CLAIMING: []}
    todo = deque([Stage.CLAIMING])
    while todo:
        here = todo.popleft()
        for there in sorted(MOVES[here]):
            if there not in paths:
                paths[there] = [*paths[here], there]
                todo.append(there)
    return paths[stage]


def _at(stage: Stage) -> Lifecycle:
    life = Lifecycle("t1")
    for step in _path_to(stage):
        life.move(step)
    assert life.stage is stage
    return life


def test_every_stage_is_reachable_and_lost_from_every_live_one() -> None:
    assert {s for s in Stage if s is Stage.CLAIMING or _path_to(s)} == set(Stage)
    assert {s for s in Stage if Stage.LOST in MOVES[s]} == LIVE | {Stage.LOST}
    assert MOVES[Stage.ENDED] == frozenset()


@pytest.mark.parametrize("was", list(Stage))
@pytest.mark.parametrize("to", list(Stage))
def test_each_move_works_exactly_when_the_table_allows_it(was: Stage, to: Stage) -> None:
    life = _at(was)
    if was is Stage.LOST and to is not Stage.LOST:
        # A lost attempt stays lost; its own steps are checked from where they had taken it
        # (here: lost while claiming).
        if to in MOVES[Stage.CLAIMING]:
            life.move(to)
            assert life.stage is Stage.LOST and life.progress is to and life.passed(to)
        else:
            with pytest.raises(IllegalMove, match=f"no move from claiming to {to} "):
                life.move(to)
    elif to in MOVES[was]:
        life.move(to)
        assert life.stage is to and life.passed(to)
    else:
        with pytest.raises(IllegalMove) as raised:
            life.move(to)
        assert f"task 't1': no move from {was} to {to}" in str(raised.value)
        assert (raised.value.was, raised.value.to) == (was, to)
        assert life.stage is was  # nothing moved


@settings(max_examples=300, deadline=None)
@given(st.lists(st.sampled_from([*Stage, BACK]), max_size=25))
def test_random_sequences_of_moves_follow_the_table(moves: list[Stage | str]) -> None:
    life = Lifecycle("t1")
    progress, lost, before, passed = Stage.CLAIMING, False, Stage.CLAIMING, {Stage.CLAIMING}
    for to in moves:
        if to == BACK:
            if progress is Stage.RELEASING:
                life.release_failed()
                progress = before
            else:
                with pytest.raises(IllegalMove, match="it is not releasing"):
                    life.release_failed()
        else:
            assert isinstance(to, Stage)
            # A lost attempt's own steps are still checked, from where they had taken it.
            was = Stage.LOST if lost and to is Stage.LOST else progress
            if to in MOVES[was]:
                life.move(to)
                passed.add(to)
                if to is Stage.LOST:
                    lost = True
                else:
                    before = progress if to is Stage.RELEASING else before
                    progress = to
            else:
                with pytest.raises(IllegalMove, match=f"no move from {was} to {to} "):
                    life.move(to)
        assert life.stage is (Stage.LOST if lost else progress)
        assert life.progress is progress
        assert {s for s in Stage if life.passed(s)} == passed


def _attempt() -> Attempt:
    return Attempt(TaskConfig(id="t1", prompt="p"), "alpha", "build", 1, frozenset())


def test_the_old_flags_are_read_from_the_stage() -> None:
    attempt = _attempt()
    flags = ("slot_free", "merging_written", "landed", "releasing", "lost")
    seen: list[tuple[Stage, list[str]]] = []
    for stage in (Stage.RUNNING, Stage.SETTLING, Stage.MERGING, Stage.LANDED, Stage.RELEASING):
        attempt.move(stage)
        seen.append((attempt.stage, [f for f in flags if getattr(attempt, f)]))
    attempt.move(Stage.ENDED)
    seen.append((attempt.stage, [f for f in flags if getattr(attempt, f)]))
    assert seen == [
        (Stage.RUNNING, []),
        (Stage.SETTLING, ["slot_free"]),
        (Stage.MERGING, ["slot_free", "merging_written"]),
        (Stage.LANDED, ["slot_free", "merging_written", "landed"]),
        (Stage.RELEASING, ["slot_free", "merging_written", "landed", "releasing"]),
        (Stage.ENDED, ["slot_free", "merging_written", "landed"]),
    ]


def test_a_lost_attempt_stays_lost_while_its_steps_finish() -> None:
    attempt = _attempt()
    attempt.move(Stage.RUNNING)
    attempt.lose()
    attempt.lose()  # the sweep, then a fenced write: the same lapse seen twice
    attempt.move(Stage.SETTLING)  # its CLI's work ended: the slot goes back all the same
    attempt.move(Stage.RELEASING)
    assert attempt.releasing and attempt.slot_free
    attempt.life.release_failed()  # the store refused: the sweeper settled the task
    assert attempt.stage is Stage.LOST and attempt.lost and not attempt.releasing
    with pytest.raises(IllegalMove, match="task 't1': no move from settling to running"):
        attempt.move(Stage.RUNNING)


def test_an_ended_attempt_has_nothing_to_lose_and_is_not_released_again() -> None:
    attempt = _attempt()
    attempt.finish()  # never claimed: someone else held the task
    assert attempt.stage is Stage.ENDED and attempt.finished.is_set()
    with pytest.raises(IllegalMove, match="no move from ended to lost"):
        attempt.lose()
    with pytest.raises(IllegalMove, match="no move from ended to releasing"):
        attempt.move(Stage.RELEASING)


async def test_a_real_runs_attempts_all_end_ended_or_lost(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    attempts: list[Attempt] = []
    launch, track = InFlight.launch, InFlight.track

    def launched(self: InFlight, attempt: Attempt) -> None:
        attempts.append(attempt)
        launch(self, attempt)

    def tracked(self: InFlight, attempt: Attempt) -> None:
        attempts.append(attempt)
        track(self, attempt)

    monkeypatch.setattr(InFlight, "launch", launched)
    monkeypatch.setattr(InFlight, "track", tracked)

    async def flaky(run: TaskRun, call: int) -> WorkflowResult:
        if call == 1:
            return failure("try again", retryable=True)
        return await edit_and_commit(run, {"out/flaky.txt": "x\n"})

    async def broken(run: TaskRun, call: int) -> WorkflowResult:
        return failure("no key", retryable=False, kind="auth_required")

    async def shared(run: TaskRun, call: int) -> WorkflowResult:
        return await edit_and_commit(run, {"shared.txt": f"{run.task.id}\n"})

    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "plain", "prompt": "p"},
        {"id": "flaky", "prompt": "p"},
        {"id": "broken", "prompt": "p"},
        {"id": "left", "prompt": "p"},
        {"id": "right", "prompt": "p"},
    ]
    probe = Probe(
        pause=0.05, behave={"flaky": flaky, "broken": broken, "left": shared, "right": shared}
    )
    async with Council(run_config(repo, tasks), workflow=probe) as council:
        report = await council.run()

    assert [report.task(t).status for t in ("plain", "flaky", "broken")] == [
        TaskStatus.DONE,
        TaskStatus.DONE,
        TaskStatus.FAILED,
    ]
    assert len(attempts) >= 6  # flaky ran twice
    ends = {(a.key, a.stage) for a in attempts}
    assert {stage for _, stage in ends} <= {Stage.ENDED, Stage.LOST}
    assert all(a.finished.is_set() and not a.releasing for a in attempts)
    landed = {a.key for a in attempts if a.landed}
    assert {"plain", "flaky"} <= landed and "broken" not in landed
