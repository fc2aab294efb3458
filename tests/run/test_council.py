"""The Council API end to end: the real ADW workflow driving the scripted CLI, events,
submitting work while a run goes on, status and the dry-run plan."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from orchestrator.council import Council, stored_report
from orchestrator.events import Event
from orchestrator.models import SessionStatus, TaskStatus
from tests.support.scheduler_helpers import Probe, merged_tasks, new_repo, run_config
from tests.support.worktree_helpers import git


async def test_a_run_through_the_real_workflow_with_the_scripted_cli(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "lib", "prompt": "WRITE lib.py VALUE = 1", "files": ["lib.py"]},
        {"id": "app", "prompt": "WRITE app.py import lib", "depends_on": ["lib"]},
        {"id": "limited", "prompt": "RATE_LIMIT reset=1\nWRITE limited.txt ok"},
    ]
    config = run_config(
        repo,
        tasks,
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
    )
    events: list[Event] = []
    async with Council(config) as council:
        council.subscribe(events.append)
        report = await council.run()

    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert sorted(merged_tasks(repo)) == ["app", "lib", "limited"]
    assert git(repo, "show", "main:app.py") == "import lib"
    lib = report.task("lib")
    assert lib.phases == {"build": "completed"}
    assert lib.adapter == "alpha" and lib.attempts == 1 and lib.merged_commit
    assert lib.input_tokens and lib.cost_usd is not None
    assert report.totals.input_tokens is not None and report.totals.input_tokens > 0
    limited = report.task("limited")
    assert limited.attempts == 2  # parked on the quota, then resumed
    assert [e.data["task_id"] for e in events if e.type == "adapter.parked"] == ["limited"]


async def test_submit_subscribe_status_and_live_view(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = run_config(repo, [{"id": "first", "prompt": "p"}])
    events: list[Event] = []
    seen_live: list[str] = []
    probe = Probe(pause=0.3)
    async with Council(config, workflow=probe) as council:
        council.subscribe(events.append)
        early = council.submit({"id": "early", "prompt": "p"})  # before the run
        async with anyio.create_task_group() as group:
            group.start_soon(council.run)
            while not council.live():
                await anyio.sleep(0.01)
            seen_live += [s.task_id for s in council.live()]
            council.submit({"id": "later", "prompt": "p", "depends_on": ["first"]})
        report = await council.status()

    assert early.id == "early"
    assert [t.task_id for t in report.tasks] == ["first", "early", "later"]
    assert report.totals.done == 3 and report.status == SessionStatus.COMPLETED
    assert set(seen_live) <= {"first", "early"} and seen_live
    assert probe.started("later")[0].at >= probe.ends["first"]
    types = {e.type for e in events}
    assert {"run.started", "task.dispatched", "task.submitted", "run.finished"} <= types
    assert {"merge.completed", "claim.acquired"} <= types
    stored = await stored_report(config.state_dir)
    assert stored.session_id == report.session_id
    assert stored.task("later").status == TaskStatus.DONE


async def test_the_plan_orders_tasks_and_shows_commands_without_running(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks: list[dict[str, Any]] = [
        {"id": "b", "prompt": "second", "depends_on": ["a"], "priority": 9},
        {"id": "a", "prompt": "first"},
        {"id": "c", "prompt": "urgent", "priority": 5},
    ]
    adapters = {
        "alpha": {"type": "scripted", "env": {"ALPHA_API_KEY": "sk-very-secret-value"}},
        "beta": {"type": "scripted"},
    }
    config = run_config(repo, tasks, adapters=adapters)
    plan = Council(config).plan()

    assert [t.task_id for t in plan.tasks] == ["c", "a", "b"]
    build = plan.tasks[0].phases[0]
    assert build.phase == "build" and build.adapters == ["alpha"]
    assert build.argv is not None and build.argv[-2:] == ["-p", "urgent"]
    assert build.env == {"ALPHA_API_KEY": "***"}
    assert "sk-very-secret-value" not in plan.model_dump_json()
    assert not (repo / ".council" / "state").exists()  # nothing ran, nothing was written
