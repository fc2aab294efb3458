"""``scheduler.board``: a task with no attempt of ours in flight says who holds it only while
its claim is live (a released claim stays on the record, naming its last holder); the run's
parts' notes (a session's services) on their task's line."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import timedelta

from orchestrator.config.task import TaskConfig
from orchestrator.models import Claim, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.scheduler.board_book import board
from orchestrator.scheduler.parts import RunPart, RunParts


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


def test_the_parts_notes_go_on_their_task_s_line_joined() -> None:
    """A part's note on a task (the session's services, ``RunPart.notes``) is on its line;
    two parts' notes on one task are both said."""

    class Says(RunPart):
        def __init__(self, said: Mapping[str, str]) -> None:
            self.said = dict(said)

        def notes(self) -> Mapping[str, str]:
            return self.said

    parts = RunParts([Says({"a": "services: web ready"}), Says({"a": "x", "b": "y"})])
    assert parts.notes() == {"a": "services: web ready; x", "b": "y"}
    tasks = [TaskConfig(id="a", prompt="p"), TaskConfig(id="c", prompt="p")]
    lines = board(tasks, {}, [], {}, None, parts.notes())
    assert [line.note for line in lines] == ["services: web ready; x", ""]
