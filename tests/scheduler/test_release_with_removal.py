"""A landed attempt's claim is released in its worktree removal's own store call (issue 51):
the release first, then the removal, then the records of its end deleted, in that order, one
worker-thread call for all of them (``release_claim_then_delete_made``), not a store call for
the release and another for the removal's records."""

from __future__ import annotations

import contextvars
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.council import Council
from orchestrator.models import ClaimStatus, TaskStatus
from orchestrator.scheduler.attempts.lander import Lander
from orchestrator.state import FileStateStore
from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES
from tests.support.scheduler_helpers import Probe, merged_tasks, new_repo, run_config

LANDING: contextvars.ContextVar[str] = contextvars.ContextVar("landing", default="")


async def test_a_landing_releases_its_claim_in_its_worktree_removal_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: dict[str, list[str]] = {}  # task -> the release and deletion calls of its landing
    hops: list[str] = []  # the deletions' own worker-thread calls in the landings
    landed, run_sync = Lander._landed, anyio.to_thread.run_sync

    async def watched(self: Lander, attempt: Any, merged: Any) -> None:
        token = LANDING.set(attempt.key)
        try:
            await landed(self, attempt, merged)
        finally:
            LANDING.reset(token)

    async def counted(func: Any, *args: Any, **kwargs: Any) -> Any:
        if LANDING.get() and getattr(func, "__qualname__", "") == "_try_locked_all":
            hops.append(LANDING.get())
        return await run_sync(func, *args, **kwargs)

    def seen(name: str) -> Any:
        real = getattr(FileStateStore, name)

        async def call(self: FileStateStore, *args: Any, **kwargs: Any) -> Any:
            if LANDING.get():
                calls.setdefault(LANDING.get(), []).append(name)
            return await real(self, *args, **kwargs)

        return call

    for name in ("release_claim", "delete_made_records", "release_claim_then_delete_made"):
        monkeypatch.setattr(FileStateStore, name, seen(name))
    monkeypatch.setattr(Lander, "_landed", watched)
    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [{"id": f"t{n}", "prompt": "p"} for n in range(3)]
    async with Council(run_config(repo, tasks), workflow=Probe(pause=0.02)) as council:
        report = await council.run()
        store = council.scheduler.services.store
        assert await store.list_records(WORKTREES) == []  # every worktree and its record gone
        states = [await store.get_task_state(f"t{n}") for n in range(3)]
    monkeypatch.undo()

    assert [report.task(f"t{n}").status for n in range(3)] == [TaskStatus.DONE] * 3
    assert sorted(merged_tasks(repo)) == ["t0", "t1", "t2"]
    for state in states:
        assert state is not None and state.claim is not None
        assert state.claim.status == ClaimStatus.COMPLETED
    # One store call each for the release, the removal and its records' deletion ...
    assert calls == {f"t{n}": ["release_claim_then_delete_made"] for n in range(3)}
    assert hops == []  # ... with no worker-thread call of the deletion's own
