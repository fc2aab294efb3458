"""The tick's view takes the task its claim wrote as read (issue 51): the claim's store call
hands back the task it wrote (``ClaimUpdatesTold``), which the view takes when its version is
the one the write announced (``TaskView.wrote``), so no tick reads a task again just because
it was claimed (a worker-thread call of its own for each, before)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.council import Council
from orchestrator.models import TaskState, TaskStatus
from orchestrator.state import FileStateStore
from tests.support.scheduler_helpers import Probe, new_repo, run_config


async def test_no_tick_reads_a_task_again_for_its_claim(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    claimed: set[tuple[str, int]] = set()  # (task, version) each claim wrote
    read: list[tuple[str, int]] = []  # what the ticks read again
    acquire, many = FileStateStore.acquire_claim, FileStateStore.get_task_states

    async def counted_acquire(self: FileStateStore, *a: Any, **k: Any) -> Any:
        claim = await acquire(self, *a, **k)
        if claim is not None:
            state = await FileStateStore.get_task_state(self, claim.task_id)
            assert state is not None
            claimed.add((state.task_id, state.version))
        return claim

    async def counted_many(self: FileStateStore, task_ids: Any) -> list[TaskState]:
        states = await many(self, task_ids)
        read.extend((s.task_id, s.version) for s in states)
        return states

    monkeypatch.setattr(FileStateStore, "acquire_claim", counted_acquire)
    monkeypatch.setattr(FileStateStore, "get_task_states", counted_many)
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": f"t{n}", "prompt": "p"} for n in range(6)]
    async with Council(run_config(repo, tasks), workflow=Probe(pause=0.05)) as council:
        report = await council.run()

    assert [report.task(f"t{n}").status for n in range(6)] == [TaskStatus.DONE] * 6
    assert len(claimed) == 6  # every task claimed once
    assert claimed.isdisjoint(read)  # and none of those writes read again by a tick
