"""Cancelling tasks: from another store handle while the run goes on, before they start, after
they ended, and a council task with its candidates."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config.run import RunConfig
from orchestrator.council import Council, request_cancel
from orchestrator.errors import CancelError, RecordNotFound
from orchestrator.models import ClaimStatus, KeyedRecord, PhaseStatus, TaskState, TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.state import FileStateStore
from tests.support.scheduler_helpers import Probe, merged_tasks, new_repo, run_config
from tests.support.timing import patience
from tests.support.worktree_helpers import git

SCRIPTED = {"type": "scripted", "options": {"delay": 0}}


async def wait_for(store: FileStateStore, task_id: str, check: Any) -> TaskState:
    with anyio.fail_after(patience(20)):
        while True:
            state = await store.get_task_state(task_id)
            if state is not None and check(state):
                return state
            await anyio.sleep(0.02)


def building(state: TaskState) -> bool:
    """The build runs and its CLI has written work.txt (then it hangs)."""
    record = state.phases.get("build")
    running = record is not None and record.status == PhaseStatus.RUNNING
    return running and state.worktree is not None and (Path(state.worktree) / "work.txt").exists()


async def test_a_running_task_cancelled_from_outside_ends_cancelled_with_its_work_kept(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "slow", "prompt": "WRITE work.txt half done\nHANG", "files": ["work.txt"]},
        {"id": "quick", "prompt": "WRITE quick.txt done"},
        {"id": "after", "prompt": "WRITE after.txt done", "files": ["work.txt"], "priority": -1},
    ]
    config = run_config(repo, tasks, adapters={"alpha": SCRIPTED})
    report: RunReport | None = None
    async with Council(config) as council:

        async def run() -> None:
            nonlocal report
            report = await council.run()

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            # Another process's view of the same state: a second handle on the store.
            async with FileStateStore(config.state_dir) as outside:
                await wait_for(outside, "slow", building)
                requested = await request_cancel(outside, "slow")
                assert requested.status == TaskStatus.RUNNING  # its orchestrator ends it
        assert await council.scheduler.services.locks.owner_of("work.txt") is None

    assert report is not None
    slow = report.task("slow")
    assert slow.status == TaskStatus.CANCELLED and slow.branch is not None
    assert report.task("quick").status == TaskStatus.DONE
    assert report.task("after").status == TaskStatus.DONE  # the cancelled task's lock was freed
    assert sorted(merged_tasks(repo)) == ["after", "quick"]
    # The CLI's work was committed on the cancelled task's branch, which is kept.
    assert git(repo, "show", f"{slow.branch}:work.txt") == "half done"
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1
    async with FileStateStore(config.state_dir) as store:
        state = await store.get_task_state("slow")
        assert state is not None and state.claim is not None
        assert state.claim.status == ClaimStatus.ABANDONED
        assert state.phases["build"].outcome == "cancelled"
        assert await store.list_records("cancel_requests") == []  # carried out, then dropped


async def test_a_cancelled_queued_task_never_runs(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "first", "prompt": "p", "priority": 5},
        {"id": "waiting", "prompt": "p"},
        {"id": "last", "prompt": "p", "priority": -5},
    ]
    config = run_config(repo, tasks, capacity={"sessions": 1})
    probe = Probe(pause=0.3)
    async with Council(config, workflow=probe) as council:
        async with anyio.create_task_group() as group:
            group.start_soon(council.run)
            while not council.live():
                await anyio.sleep(0.01)
            state = await council.cancel("waiting")
            assert state.status == TaskStatus.CANCELLED  # nobody ran it: cancelled at once
        report = await council.status()

    assert probe.calls["waiting"] == 0
    assert report.task("waiting").status == TaskStatus.CANCELLED
    assert report.task("first").status == report.task("last").status == TaskStatus.DONE
    assert report.totals.cancelled == 1 and report.exit_code == 1


async def test_cancelling_a_finished_or_unknown_task_is_an_error(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = run_config(repo, [{"id": "only", "prompt": "p"}])
    async with Council(config, workflow=Probe(pause=0)) as council:
        await council.run()
        with pytest.raises(CancelError, match="'only' already ended \\(done\\)"):
            await council.cancel("only")
        with pytest.raises(RecordNotFound, match="no task 'nope'"):
            await council.cancel("nope")
        report = await council.status()
    assert report.task("only").status == TaskStatus.DONE


def council_config(repo: Path) -> RunConfig:
    task = {
        "id": "feature",
        "prompt": "Add feature.py",
        "council": True,
        "adapters": ["alpha", "beta"],
        "metadata": {
            "phase_instructions": {"build": "WRITE feature.py NAME = 1"},
            "candidates": {"beta": {"phase_instructions": {"build": "WRITE work.txt x\nHANG"}}},
        },
    }
    return run_config(repo, [task], adapters={"alpha": SCRIPTED, "beta": SCRIPTED})


async def test_cancelling_a_council_task_cancels_every_candidate(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = council_config(repo)
    async with Council(config) as council:
        async with anyio.create_task_group() as group:
            group.start_soon(council.run)
            async with FileStateStore(config.state_dir) as outside:
                await wait_for(outside, "feature.c2", building)
                await wait_for(outside, "feature.c1", lambda s: s.status == TaskStatus.MERGING)
                await request_cancel(outside, "feature")
        report = await council.status()

    feature = report.task("feature")
    assert feature.status == TaskStatus.CANCELLED
    assert [(c.adapter, c.status) for c in feature.candidates] == [
        ("alpha", "cancelled"),
        ("beta", "cancelled"),
    ]
    assert merged_tasks(repo) == []
    branches = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/council/")
    assert sorted(branches.split()) == ["council/feature/1", "council/feature/2"]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


async def test_a_request_the_running_orchestrator_carries_out_first_is_done(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The live scheduler sees the request record and cancels the queued task itself between
    # the request and the command's own write: the command reports it cancelled, not "already
    # ended".
    from orchestrator.scheduler.cancel import CANCEL_REQUESTS, cancelled_updates

    async with FileStateStore(tmp_path / "state") as store:
        await store.create_session({}, ["t1"], session_id="s1")
        put = store.put_record

        async def put_then_the_scheduler_acts(
            namespace: str, key: str, *args: Any, **kw: Any
        ) -> KeyedRecord:
            record = await put(namespace, key, *args, **kw)
            if namespace == CANCEL_REQUESTS:
                state = await store.get_task_state(key)
                assert state is not None
                await store.update_task_state(key, cancelled_updates(state))
            return record

        monkeypatch.setattr(store, "put_record", put_then_the_scheduler_acts)
        state = await request_cancel(store, "t1")
        assert state.status == TaskStatus.CANCELLED
