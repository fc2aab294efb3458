"""A run that ends with work left to do in its store (a task another process sent back to the
queue as the run decided to end) ends ``interrupted``, resumable, never ``failed`` with nothing
failed; ``resume`` then runs that task to done. Real runs, scripted CLI, real git."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator import Council
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.scheduler.scheduler import Scheduler
from tests.support.scheduler_helpers import new_repo, run_config


async def test_a_task_sent_back_to_the_queue_as_the_run_ends_leaves_it_resumable(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    build = "WRITE one.txt hello"
    tasks = [
        {
            "id": "one",
            "prompt": "write one.txt",
            "metadata": {"phase_instructions": {"build": build}},
        }
    ]
    config = run_config(repo, tasks)
    ends = Scheduler._ends
    sent_back: list[str] = []

    async def and_sent_back(self: Scheduler) -> bool:
        ended = await ends(self)
        if ended and not sent_back:  # another process's write, just after the decision
            await self.services.store.update_task_state("one", {"status": TaskStatus.QUEUED})
            sent_back.append("one")
        return ended

    monkeypatch.setattr(Scheduler, "_ends", and_sent_back)
    async with Council(config) as council:
        first = await council.run()
    assert sent_back == ["one"]
    assert first.status == SessionStatus.INTERRUPTED, first
    async with Council(config) as council:
        again = await council.resume()
    assert again.status == SessionStatus.COMPLETED, again
    assert {t.task_id: t.status for t in again.tasks} == {"one": TaskStatus.DONE}
