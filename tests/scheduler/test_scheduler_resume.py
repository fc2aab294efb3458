"""Graceful stop, kill and resume: work is kept, finished phases are not run again, nothing is
merged twice; and heartbeats keep a long attempt's claim alive."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from orchestrator.config.run import RunConfig
from orchestrator.council import Council
from orchestrator.errors import RecordNotFound
from orchestrator.events import Event
from orchestrator.models import ClaimStatus, SessionStatus, TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from tests.support.scheduler_helpers import (
    Probe,
    edit_and_commit,
    merged_tasks,
    new_repo,
    phase_done,
    record_phase,
    run_config,
    wait_or_cancel,
)
from tests.support.worktree_helpers import git

TASKS: list[dict[str, Any]] = [
    {"id": "quick", "prompt": "p", "priority": 9},
    {"id": "slow-1", "prompt": "p"},
    {"id": "slow-2", "prompt": "p"},
]


def config_for(repo: Path) -> RunConfig:
    return run_config(repo, TASKS, workflow={"phases": [{"name": "scout"}, {"name": "build"}]})


class TwoPhases:
    """scout (records a finding, committed) then build; the first run's build hangs until
    cancelled, then commits what it has, like the real workflow does on a stop."""

    def __init__(self, hang: bool) -> None:
        self.hang = hang
        self.scouted: list[str] = []
        self.built: list[str] = []

    async def __call__(self, run: TaskRun, call: int) -> WorkflowResult:
        if not await phase_done(run, "scout"):
            self.scouted.append(run.task.id)
            (run.session.path / f"{run.task.id}-scout.md").write_text("findings\n")
            await run.worktrees.commit_in_worktree(run.session, "scout notes")
            await record_phase(run, "scout")
        if self.hang and run.task.id != "quick":
            (run.session.path / f"{run.task.id}-draft.txt").write_text("half done\n")
            await wait_or_cancel(run, 30)
            await run.worktrees.commit_in_worktree(run.session, "interrupted build")
            return WorkflowResult(WorkflowStatus.CANCELLED, phase="build")
        self.built.append(run.task.id)
        return await edit_and_commit(run, {f"out/{run.task.id}.txt": "done\n"})


async def test_stop_then_resume_finishes_every_task_once(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    first = TwoPhases(hang=True)
    probe = Probe(behave={t["id"]: first for t in TASKS})
    ready = anyio.Event()

    async def poll(council: Council) -> None:
        while True:
            try:
                report = await council.status()
            except RecordNotFound:  # the run has not created its session yet
                await anyio.sleep(0.02)
                continue
            if report.totals.unrecorded:  # the session is on record, its tasks not all yet
                await anyio.sleep(0.02)
                continue
            slow = [t for t in report.tasks if t.task_id != "quick"]
            if report.task("quick").status == TaskStatus.DONE and all(
                t.phases.get("scout") == "completed" for t in slow
            ):
                ready.set()
                return
            await anyio.sleep(0.02)

    async with Council(config_for(repo), workflow=probe) as council:
        async with anyio.create_task_group() as group:
            reports: list[RunReport] = []

            async def go() -> None:
                reports.append(await council.run())

            group.start_soon(go)
            await anyio.sleep(0.1)
            await poll(council)
            council.stop()
        report = reports[0]
        store = council.scheduler.services.store
        session_id = report.session_id
        checkpoints = await store.list_checkpoints(session_id)
        slow_states = [await store.get_task_state(t) for t in ("slow-1", "slow-2")]

    assert report.status == SessionStatus.INTERRUPTED and report.exit_code == 130
    assert [c.reason for c in checkpoints] == ["interrupted"]
    for state in slow_states:
        assert state is not None and state.status == TaskStatus.QUEUED
        assert state.claim is not None and state.claim.status == ClaimStatus.ABANDONED
    assert merged_tasks(repo) == ["quick"]

    second = TwoPhases(hang=False)
    async with Council(
        config_for(repo), workflow=Probe(behave={t["id"]: second for t in TASKS})
    ) as council:
        resumed = await council.resume()

    assert resumed.session_id == session_id and resumed.exit_code == 0
    assert sorted(first.scouted) == ["quick", "slow-1", "slow-2"]
    assert second.scouted == []  # finished phases are not run again
    assert sorted(second.built) == ["slow-1", "slow-2"]  # and quick is not run at all
    assert sorted(merged_tasks(repo)) == ["quick", "slow-1", "slow-2"]
    tree = git(repo, "ls-tree", "-r", "--name-only", "main").split()
    for kept in ("slow-1-scout.md", "slow-1-draft.txt", "slow-2-draft.txt", "out/slow-2.txt"):
        assert kept in tree  # the interrupted attempt's work was continued, not redone


async def test_a_killed_run_resumes_without_merging_anything_twice(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    probe = Probe(behave={t["id"]: TwoPhases(hang=True) for t in TASKS})
    async with Council(config_for(repo), workflow=probe) as council:
        async with anyio.create_task_group() as group:
            group.start_soon(council.run)
            while merged_tasks(repo) != ["quick"] or len(probe.running_tasks()) < 2:
                await anyio.sleep(0.02)
            council.kill()
        store = council.scheduler.services.store
        session_id = council.session_id
        assert session_id is not None
        # Pretend the kill came between the merge and its state write: the task says merging.
        await store.update_task_state("quick", {"status": TaskStatus.MERGING})
        states = {t.task_id: (t.status, t.attempt) for t in await store.list_tasks(session_id)}

    # The killed attempts were given back to the queue, not counted: the user stopped them.
    # quick's own attempt may have been killed too, after its merge and before its record
    # (then given back uncounted as well): either way its trailer says it landed.
    quick = states.pop("quick")
    assert quick in (("merging", 0), ("merging", 1))
    assert states == {"slow-1": ("queued", 0), "slow-2": ("queued", 0)}
    events: list[Event] = []
    finish = TwoPhases(hang=False)
    async with Council(
        config_for(repo), workflow=Probe(behave={t["id"]: finish for t in TASKS})
    ) as council:
        council.subscribe(events.append)
        report = await council.resume(session_id)

    assert report.exit_code == 0 and report.totals.done == 3
    assert finish.scouted == []
    assert sorted(merged_tasks(repo)) == ["quick", "slow-1", "slow-2"]
    # Its trailer on the base says it landed: done at once, never run or merged again.
    landed = [e.data["task_id"] for e in events if e.type == "task.already_merged"]
    assert landed == ["quick"] and probe_calls(events, "quick") == 0


async def test_heartbeats_keep_a_long_attempt_claimed(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = run_config(
        repo,
        [{"id": "long", "prompt": "p"}],
        scheduler={"tick": 0.02, "heartbeat_interval": 0.1, "stale_threshold": 0.8},
    )
    events: list[Event] = []
    async with Council(config, workflow=Probe(pause=1.5)) as council:
        council.subscribe(events.append)
        report = await council.run()

    assert report.task("long").status == TaskStatus.DONE and report.task("long").attempts == 1
    assert sum(e.type == "claim.renewed" for e in events) >= 5
    assert not [e for e in events if e.type in ("claim.expired", "task.swept")]


def probe_calls(events: list[Event], task_id: str) -> int:
    return sum(e.type == "task.dispatched" and e.data["task_id"] == task_id for e in events)


async def test_an_attempt_stopped_before_its_worktree_is_made_goes_back_uncounted(
    tmp_path: Path,
) -> None:
    """A stop that comes while an attempt is claimed but has no worktree yet gives the task
    back to the queue, uncounted, without making the worktree the stop would only wait for;
    `council resume` then makes it and runs the task."""
    repo = new_repo(tmp_path)
    tasks = [{"id": "only", "prompt": "p"}]
    config = run_config(repo, tasks, workflow={"phases": [{"name": "build"}]})
    made: list[str] = []
    async with Council(config, workflow=Probe()) as council:
        services = council.scheduler.services
        real_create = services.worktrees.create_session_worktree
        real_acquire = services.store.acquire_claim

        async def acquire_then_stop(*args: Any, **kwargs: Any) -> Any:
            claim = await real_acquire(*args, **kwargs)
            council.stop()  # the user's Ctrl-C, just after the claim
            return claim

        async def create(*args: Any, **kwargs: Any) -> Any:
            made.append(str(args[0]))
            return await real_create(*args, **kwargs)

        services.store.acquire_claim = acquire_then_stop  # type: ignore[method-assign]
        services.worktrees.create_session_worktree = create  # type: ignore[method-assign]
        report = await council.run()
        state = await services.store.get_task_state("only")
    assert report.status == SessionStatus.INTERRUPTED
    assert made == []  # no worktree made for a stopped attempt
    assert state is not None and state.status == TaskStatus.QUEUED and state.attempt == 0
    assert state.claim is not None and state.claim.status == ClaimStatus.ABANDONED
    async with Council(config, workflow=Probe()) as council:
        resumed = await council.resume()
    assert resumed.exit_code == 0
    assert merged_tasks(repo) == ["only"]
