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
