"""A build's changed files reach its session's context, and the radar's first sighting of the
session and the run's spend line are written, in the phase's completion call (issue 51:
``put_made_record_and_task_carrying``, ``state.carried``): the handoff's record, the task's
phase record, the context, the line and the sighting in one worker-thread call, no store call
of the context's or the sighting's own; the context says the files as ``add_files`` would, the
line the build's call, the sighting what the radar read."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.council import Council
from orchestrator.filelock import LockWait
from orchestrator.models import KeyedRecord
from orchestrator.radar.records import SIGHTINGS
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.spend.line import SpendLine
from orchestrator.state import FileStateStore
from orchestrator.state.context import CONTEXTS
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


async def test_a_builds_files_ride_its_completion_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = new_repo(tmp_path)
    task = {
        "id": "t1",
        "prompt": "Work on a.py.",
        "files": [],
        "phases": ["build"],
        "metadata": {"phase_instructions": {"build": "WRITE a.py A = 1"}},
    }
    config = run_config(
        repo, [task], adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    single: list[str] = []  # namespaces written in a store call of their own
    carried: list[tuple[list[str], int, list[KeyedRecord | None]]] = []
    hopped: list[asyncio.Task[Any] | None] = []  # the task that made each worker-thread call
    real_hop = anyio.to_thread.run_sync

    async def hop(fn: Any, *a: Any, **k: Any) -> Any:
        hopped.append(asyncio.current_task())
        return await real_hop(fn, *a, **k)

    monkeypatch.setattr(anyio.to_thread, "run_sync", hop)
    real_put, real_carrying = (
        FileStateStore.put_made_record,
        FileStateStore.put_made_record_and_task_carrying,
    )

    async def put_made_record(self: FileStateStore, namespace: str, *a: Any, **k: Any) -> Any:
        single.append(namespace)
        return await real_put(self, namespace, *a, **k)

    async def carrying(self: FileStateStore, *a: Any, **k: Any) -> Any:
        before, busy_before = len(hopped), len(busy)
        answer = await real_carrying(self, *a, **k)
        puts = [put.namespace for put in k["carried"]]
        mine = [t for t in hopped[before:] if t is asyncio.current_task()]  # not the others'
        retried = [t for t in busy[busy_before:] if t is asyncio.current_task()]
        carried.append((puts, len(mine) - len(retried), answer[3]))
        return answer

    # A lock another thread holds at that moment (a heartbeat's, the monitor's sweep) makes
    # the call try again in a call of its own, by design (locks are tried, never waited on in
    # a worker thread): each such retry is counted, and only those may add a call.
    busy: list[asyncio.Task[Any] | None] = []  # the task each busy lock sent back
    real_again = LockWait.again

    async def again(self: Any, lock_path: Any) -> None:
        busy.append(asyncio.current_task())
        await real_again(self, lock_path)

    monkeypatch.setattr(FileStateStore, "put_made_record", put_made_record)
    monkeypatch.setattr(FileStateStore, "put_made_record_and_task_carrying", carrying)
    monkeypatch.setattr(LockWait, "again", again)
    async with Council(config) as council:
        report = await council.run()
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert merged_tasks(repo) == ["t1"]
    assert not {CONTEXTS, SIGHTINGS} & set(single), single
    assert len(carried) == 1, carried
    puts, hops, written = carried[0]
    # One worker-thread call, besides one for each try a busy lock sent back.
    assert (puts, hops) == ([CONTEXTS, SPEND_LINES, SIGHTINGS], 1)
    context, line, sighting = written
    assert line is not None and SpendLine.model_validate(line.data).calls == 1
    assert context is not None
    assert context.data["files_changing"] == ["a.py"]
    assert context.data["task"] == "t1" and context.data["status"] == "working"
    assert sighting is not None and sighting.expires_at is not None  # (its time to live)
    assert sighting.data["task_id"] == "t1" and sighting.data["files"], sighting.data
