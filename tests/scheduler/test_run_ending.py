"""The run's end is one decision from one read of its tasks (``scheduler.ending``): for any
task statuses, any part's holds and any interleaving of a re-queue between the tick that
found the run settled and the end's own read, the session never ends ``failed`` without a
failed (or conflicting) task, never ``completed`` with a task not done, and a task left to
do always leaves the session resumable."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.models import TERMINAL_TASK_STATUSES, SessionStatus, TaskState, TaskStatus
from orchestrator.scheduler.ending import RunEnd, after_waiting, decide, settled
from orchestrator.scheduler.rules.queue import CheckoutEnd

_BAD = (TaskStatus.FAILED, TaskStatus.CONFLICT)


@dataclass
class Part:
    """A part that holds the tasks it is given, and says they wait outside the run."""

    checkpoint: str
    shared: bool
    held: set[str] = field(default_factory=set)
    looking: set[str] = field(default_factory=set)

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        return task_id in self.held

    def unlooked(self, state: TaskState) -> bool:
        return state.task_id in self.looking

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return {task_id for task_id in self.held if task_id in states}


def _states(statuses: Sequence[TaskStatus]) -> dict[str, TaskState]:
    return {f"t{i}": TaskState(task_id=f"t{i}", status=status) for i, status in enumerate(statuses)}


def _check(end: RunEnd, states: Mapping[str, TaskState], team: bool) -> None:
    said = [s.status for s in states.values()]
    if end.status == SessionStatus.FAILED:
        assert any(status in _BAD for status in said), said
    if end.status == SessionStatus.COMPLETED:
        assert all(status == TaskStatus.DONE for status in said), said
    if end.status == SessionStatus.CANCELLED:
        assert all(status in (TaskStatus.DONE, TaskStatus.CANCELLED) for status in said)
    if any(status not in TERMINAL_TASK_STATUSES for status in said):
        # left to do: resumable (or, in a team, the others' to finish)
        assert end.leaves or (
            end.status == SessionStatus.INTERRUPTED and end.checkpoint is not None
        ), (end, said)
    if end.leaves:
        assert team


statuses = st.lists(st.sampled_from(list(TaskStatus)), min_size=1, max_size=8)


@settings(max_examples=400, deadline=None)
@given(
    found=statuses,
    requeued=st.lists(st.integers(min_value=0, max_value=7), max_size=3),
    budget=st.sets(st.integers(min_value=0, max_value=7), max_size=3),
    person=st.sets(st.integers(min_value=0, max_value=7), max_size=3),
    team=st.booleans(),
)
def test_no_interleaving_of_a_requeue_and_the_end_ends_failed_without_a_failed_task(
    found: list[TaskStatus],
    requeued: list[int],
    budget: set[int],
    person: set[int],
    team: bool,
) -> None:
    before = _states(found)
    budgets = Part("budget", shared=True, held={f"t{i}" for i in budget})
    pulls = Part("in_review", shared=False, held={f"t{i}" for i in person})
    parts = (budgets, CheckoutEnd(), pulls)
    ids = list(before)
    depends_on: dict[str, list[str]] = {task_id: [] for task_id in ids}
    _check(decide(before, parts, team=team), before, team)
    # Whatever the tick found (settled or not), a feedback round or a sent-back attempt
    # re-queues tasks before the end reads again: the end decides from its own read.
    after = dict(before)
    for index in requeued:
        task_id = f"t{index % len(ids)}"
        after[task_id] = after[task_id].model_copy(update={"status": TaskStatus.QUEUED})
    settled(ids, before, parts, depends_on)  # the tick's look changes nothing
    _check(decide(after, parts, team=team), after, team)


def test_the_first_part_that_holds_names_the_checkpoint() -> None:
    states = _states([TaskStatus.DONE, TaskStatus.WAITING_FOR_CHECKOUT, TaskStatus.IN_REVIEW])
    pulls = Part("in_review", shared=False, held={"t2"})
    budgets = Part("budget", shared=True)
    assert decide(states, (budgets, CheckoutEnd(), pulls), team=False) == RunEnd(
        SessionStatus.INTERRUPTED, "waiting_for_checkout"
    )
    budgets.held.add("t0")
    assert decide(states, (budgets, CheckoutEnd(), pulls), team=False).checkpoint == "budget"


def test_a_team_workstation_leaves_unless_only_a_shared_hold_keeps_the_work() -> None:
    states = _states([TaskStatus.DONE, TaskStatus.QUEUED])
    budgets = Part("budget", shared=True)
    assert decide(states, (budgets,), team=True).leaves
    budgets.held.add("t1")  # the team's budget holds it: every workstation ends on it
    assert decide(states, (budgets,), team=True) == RunEnd(SessionStatus.INTERRUPTED, "budget")
    assert decide(states, (budgets,), team=False) == RunEnd(SessionStatus.INTERRUPTED, "budget")


def test_how_a_run_of_ended_tasks_ends() -> None:
    assert decide(_states([TaskStatus.DONE] * 2), (), team=False) == RunEnd(SessionStatus.COMPLETED)
    assert decide(_states([TaskStatus.DONE, TaskStatus.CANCELLED]), (), team=False) == RunEnd(
        SessionStatus.CANCELLED
    )
    assert decide(_states([TaskStatus.DONE, TaskStatus.CONFLICT]), (), team=False) == RunEnd(
        SessionStatus.FAILED
    )
    assert decide(_states([TaskStatus.DONE, TaskStatus.QUEUED]), (), team=False) == RunEnd(
        SessionStatus.INTERRUPTED, "unfinished"
    )


def test_settled_waits_for_what_a_part_has_still_to_look_at_and_not_for_what_waits_outside() -> (
    None
):
    states = _states([TaskStatus.DONE, TaskStatus.IN_REVIEW, TaskStatus.QUEUED])
    depends = {"t0": [], "t1": [], "t2": ["t1"]}
    pulls = Part("in_review", shared=False)
    assert not settled(list(states), states, (pulls,), depends)
    pulls.held.update({"t1", "t2"})  # waits for a person, and behind one
    assert settled(list(states), states, (pulls,), depends)
    pulls.looking.add("t0")  # a pass has still to look at t0's pull request
    assert not settled(list(states), states, (pulls,), depends)
    assert not settled(["t0", "gone"], states, (), depends)  # a task with no record


def test_a_task_waits_behind_a_dependency_that_waits_however_far_up() -> None:
    states = _states([TaskStatus.IN_REVIEW, TaskStatus.PARKED, TaskStatus.QUEUED])
    depends = {"t0": [], "t1": ["t0"], "t2": ["t1"]}

    def waits(state: TaskState) -> bool:
        return state.status == TaskStatus.IN_REVIEW

    assert after_waiting("t2", depends, states, waits)
    assert not after_waiting("t0", depends, states, waits)  # not waiting itself (in review)
    running = {**states, "t1": states["t1"].model_copy(update={"status": TaskStatus.RUNNING})}
    assert not after_waiting("t2", depends, running, waits)  # a dependency that runs moves
