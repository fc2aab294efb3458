"""A task a session lists without a record in it: queued while the session can still record it
(a big run starting, or stopped while it recorded its tasks), left out once the session ended
(a later session of a team's run took the record over: the run that ended is not "1 queued")."""

from __future__ import annotations

import pytest

from orchestrator.models import SessionRecord, SessionStatus, TaskState, TaskStatus
from orchestrator.run.reports.build_report import build_report


def _report(status: SessionStatus) -> tuple[list[str], int, int, int]:
    session = SessionRecord(session_id="s1", status=status, task_ids=["a", "b"])
    done = TaskState(task_id="a", session_id="s1", status=TaskStatus.DONE)
    report = build_report(session, [done])
    listed = [f"{t.task_id}:{t.status}" for t in report.tasks]
    return listed, report.totals.tasks, report.totals.unrecorded, report.exit_code


@pytest.mark.parametrize("status", [SessionStatus.ACTIVE, SessionStatus.INTERRUPTED])
def test_a_session_that_can_record_it_lists_it_as_queued(status: SessionStatus) -> None:
    listed, tasks, unrecorded, code = _report(status)
    assert listed == ["a:done", "b:queued"]
    assert (tasks, unrecorded) == (2, 1)
    assert code != 0  # not every task done


@pytest.mark.parametrize(
    "status", [SessionStatus.COMPLETED, SessionStatus.FAILED, SessionStatus.CANCELLED]
)
def test_an_ended_session_leaves_out_what_another_session_took(status: SessionStatus) -> None:
    listed, tasks, unrecorded, code = _report(status)
    assert listed == ["a:done"]
    assert (tasks, unrecorded) == (1, 0)
    if status is SessionStatus.COMPLETED:
        assert code == 0  # the workstation that ended it says its run landed everything


def test_a_record_as_its_batch_made_it_reports_as_built_field_by_field() -> None:
    # The copy made for a record nothing has touched yet is the report built from it whole.
    from orchestrator.run.reports import build_report as built

    fresh = TaskState(task_id="b", session_id="s1", priority=3)
    done = TaskState(task_id="a", session_id="s1", status=TaskStatus.DONE)
    queued = TaskState(task_id="c", session_id="s1")
    states = {"a": done, "b": fresh, "c": queued}
    now = fresh.updated_at
    assert built._untouched(fresh)
    for deps in ([], ["a"], ["a", "c"]):
        quick = built._task_report(fresh, deps, states, now)
        whole = built._task_report(
            fresh.model_copy(update={"metadata": {"x": 1}}), deps, states, now
        )
        assert quick == whole.model_copy(update={"task_id": "b"})
    assert built._task_report(fresh, ["c"], states, now).waiting == "after c"
    touched = fresh.model_copy(update={"attempt": 1, "adapter": "a"})
    assert not built._untouched(touched)
    assert built._task_report(touched, [], states, now).attempts == 1


def test_a_queued_copy_is_the_model_copy_it_stands_for() -> None:
    # Made without pydantic's generic copy: the same fields, the same fields set, the same
    # JSON, and a copy of it changes neither it nor the report it was made from.
    from orchestrator.run.reports import build_report as built

    made = built._queued_copy("t1", "after t0")
    copied = built._QUEUED.model_copy(update={"task_id": "t1", "waiting": "after t0"})
    assert made == copied and made.model_fields_set == copied.model_fields_set
    assert made.model_dump_json() == copied.model_dump_json()
    changed = made.model_copy(update={"status": TaskStatus.DONE})
    assert (changed.status, made.status, built._QUEUED.task_id) == (
        TaskStatus.DONE,
        TaskStatus.QUEUED,
        "-",
    )
    made.model_fields_set.add("adapter")
    assert "adapter" not in built._queued_copy("t2", None).model_fields_set


USAGES = [
    {"input_tokens": 184, "output_tokens": 5, "cost_usd": 0.000627},  # as the CLIs report them
    {"input_tokens": 3.0, "output_tokens": 7, "cost_usd": 1},  # other numbers: validated
    {"cost_usd": 0.5},
    None,
]


@pytest.mark.parametrize("usage", USAGES)
def test_a_task_line_made_without_validating_again_is_the_validated_one(
    usage: dict[str, float] | None,
) -> None:
    """``_checked_report``: a task's line made from values validated once already is what
    validating them again makes, field for field (each value of the same type), with the same
    fields set and the same JSON; usage figures of another type are converted as before."""
    from orchestrator.run.reports import build_report as built
    from orchestrator.run.reports.report import TaskReport

    metadata = {"usage": usage, "outcome": "verify_failed"} if usage is not None else {}
    state = TaskState(
        task_id="a",
        session_id="s1",
        status=TaskStatus.FAILED,
        adapter="claude",
        attempt=2,
        error="broke",
        phases={"build": {"name": "build", "status": "failed"}},
        metadata={**metadata, "conflicts": ["README.md"], "parks": 1},
    )
    made = built._task_report(state, [], {"a": state}, state.updated_at)
    validated = TaskReport(**{name: getattr(made, name) for name in TaskReport.model_fields})
    assert made == validated and made.model_fields_set == validated.model_fields_set
    assert made.model_dump_json() == validated.model_dump_json()
    assert [type(getattr(made, n)) for n in TaskReport.model_fields] == [
        type(getattr(validated, n)) for n in TaskReport.model_fields
    ]
    if usage is not None and "input_tokens" in usage:
        assert (made.input_tokens, made.cost_usd) == (int(usage["input_tokens"]), usage["cost_usd"])
        assert type(made.input_tokens) is int and type(made.cost_usd) is float
    assert (made.outcome, made.conflicts, made.parks) == (
        "verify_failed" if usage is not None else None,
        ["README.md"],
        1,
    )
