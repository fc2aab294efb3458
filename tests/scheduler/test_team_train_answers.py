"""A teammate's answer in the team's train (``scheduler.team.train``) is read as untrusted: only
a landing of this task at the very commit its owner recorded is taken as one."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest

from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.scheduler.team.train_answers import result_data as _result_data
from orchestrator.scheduler.team.train_answers import result_from as _result_from

TIP = "a" * 40
BASE = "b" * 40
MERGE = "c" * 40


def _landed() -> MergeResult:
    return MergeResult(
        status=MergeStatus.MERGED,
        session_id="t01.abc123",
        task_id="t01",
        branch="council/t01/1",
        base_branch="main",
        branch_tip=TIP,
        base_before=BASE,
        base_after=MERGE,
        merge_commit=MERGE,
        tip_contained=True,
        message="landed on origin/main in " + MERGE,
        pushed_to="origin",
    )


def test_a_landing_reads_back_as_it_was_written() -> None:
    result = _landed()
    read = _result_from(_result_data(result), "t01", TIP)
    assert read == replace(result, timings={}, git_calls=0)
    conflict = replace(result, status=MergeStatus.CONFLICT, merge_commit=None, conflicts=["a.py"])
    assert _result_from(_result_data(conflict), "t01", TIP).conflicts == ["a.py"]


@pytest.mark.parametrize(
    ("change", "named"),
    [
        ({"branch_tip": "d" * 40}, "branch_tip"),  # another commit than the one recorded
        ({"task_id": "t02"}, "task_id"),
        ({"base_after": "main"}, "base_after"),
        ({"merge_commit": "HEAD"}, "merge_commit"),
        ({"merge_commit": None}, "merge commit"),
        ({"status": "waiting_for_checkout"}, "checkout"),
        ({"status": "landed somehow"}, "landed somehow"),
        ({"message": ["not", "text"]}, "message"),
    ],
)
def test_an_answer_that_is_not_this_tasks_landing_at_its_commit_is_refused(
    change: dict[str, Any], named: str
) -> None:
    data = _result_data(_landed()) | change
    with pytest.raises((ValueError, TypeError), match=named):
        _result_from(data, "t01", TIP)


def test_an_answer_that_is_not_a_mapping_is_refused() -> None:
    with pytest.raises(TypeError, match="not a mapping"):
        _result_from(["merged"], "t01", TIP)
