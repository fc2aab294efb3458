"""``scheduler.board``: a task with no attempt of ours in flight says who holds it only while
its claim is live (a released claim stays on the record, naming its last holder)."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.config.task import TaskConfig
from orchestrator.models import Claim, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.scheduler.board import board


def _claimed(status: ClaimStatus) -> TaskState:
    now = utcnow()
    claim = Claim(
        task_id="a",
        holder="other-host:4242:abcd",
        token=3,
        acquired_at=now,
        renewed_at=now,
        expires_at=now + timedelta(seconds=30),
        status=status,
    )
    return TaskState(task_id="a", status=TaskStatus.QUEUED, claim=claim)


def test_a_live_claim_of_another_workstation_is_named_and_a_released_one_is_not() -> None:
    tasks = [TaskConfig(id="a", prompt="p")]
    held = board(tasks, {"a": _claimed(ClaimStatus.ACTIVE)}, [], {})
    assert held[0].detail == "on other-host:4242"
    released = board(tasks, {"a": _claimed(ClaimStatus.COMPLETED)}, [], {})
    assert released[0].detail == ""
    waiting = board(tasks, {"a": _claimed(ClaimStatus.COMPLETED)}, [], {"a": "after b"})
    assert waiting[0].detail == "after b"
