"""The context layer in a real run: the scheduler keeps each session's context in the store as
it takes, reports and releases files, and every phase prompt of the scripted CLI names the
files the other sessions own or change, until they land."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import anyio

from orchestrator.council import Council
from orchestrator.models import TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.state.context import ContextManager, SessionContext
from orchestrator.state.protocol import StateStore
from orchestrator.workflow.handoffs.busy_files import HEADING, LEAD
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config
from tests.support.timing import patience
from tests.support.workflow_helpers import logged_prompts


def scripted_task(task_id: str, files: list[str], **phases: str) -> dict[str, Any]:
    """A task whose scripted CLI does ``phases[name]`` (scripted-cli lines) in each phase."""
    return {
        "id": task_id,
        "prompt": f"Work on {', '.join(files)}.",
        "files": files,
        "phases": list(phases),
        "metadata": {"phase_instructions": phases},
    }


async def status_of(store: StateStore, task_id: str) -> TaskStatus | None:
    state = await store.get_task_state(task_id)
    return None if state is None else state.status


async def context_of(contexts: ContextManager, task_id: str) -> SessionContext | None:
    return next((c for c in await contexts.all_contexts() if c.task == task_id), None)


async def test_a_prompt_names_the_files_another_task_owns_until_it_lands(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    owner_may_build, watcher_may_plan = tmp_path / "owner-go", tmp_path / "watcher-go"
    owner = scripted_task(
        "owner",
        ["a.py"],
        plan="SAY FILES: a.py, notes/extra.py",
        build=f"WAIT_FOR {owner_may_build} 60\nWRITE a.py A = 1",
    )
    watcher = scripted_task(
        "watcher",
        ["b.py"],
        plan=f"WAIT_FOR {watcher_may_plan} 60\nSAY FILES: b.py",
        build="WRITE b.py B = 1",
    )
    later = {**scripted_task("later", ["c.py"], build="WRITE c.py C = 1"), "depends_on": ["owner"]}
    config = run_config(
        repo,
        [{**owner, "priority": 10}, watcher, later],
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        workflow={"phases": [{"name": "plan"}, {"name": "build"}]},
        sandbox={"read": [str(tmp_path)]},  # the CLIs wait for the test's gates
    )
    reports: list[RunReport] = []
    async with Council(config) as council:
        store = council.scheduler.services.store
        contexts = ContextManager(store, repo)

        async def run() -> None:
            reports.append(await council.run())

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            with anyio.fail_after(patience(60)):
                # The owner's build holds its declared file and the one its plan added (the
                # plan's files are locked, then reported, before the build's CLI starts).
                while True:
                    mine = await context_of(contexts, "owner")
                    if mine is not None and "notes/extra.py" in mine.files():
                        break
                    await anyio.sleep(0.02)
                assert mine.files_locked == ["a.py", "notes/extra.py"] and mine.cli == "alpha"
                watcher_may_plan.touch()
                # The watcher lands (its status written first, then its locks released with
                # its context); the owner's context is still on.
                while (
                    await status_of(store, "watcher") != TaskStatus.DONE
                    or await context_of(contexts, "watcher") is not None
                ):
                    await anyio.sleep(0.02)
                assert [c.task for c in await contexts.all_contexts()] == ["owner"]
                owner_may_build.touch()
        assert await contexts.all_contexts() == []  # everyone landed: nobody is on any file

    (report,) = reports
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert sorted(merged_tasks(repo)) == ["later", "owner", "watcher"]
    logs = repo / ".council" / "logs"
    (watcher_build,) = logged_prompts(logs, "watcher", "build")
    assert f"{HEADING}\n{LEAD}\n- a.py (task owner)\n- notes/extra.py (task owner)\n" in (
        watcher_build
    )
    # Its own files are never named to a session; a session after the owner landed (nobody
    # else on any file by then) gets no section at all.
    (owner_build,) = logged_prompts(logs, "owner", "build")
    assert "- a.py (task owner)" not in owner_build
    (later_build,) = logged_prompts(logs, "later", "build")
    assert HEADING not in later_build and "a.py" not in later_build


async def test_council_candidates_share_their_files_and_others_are_told(tmp_path: Path) -> None:
    """A council task's candidates hold its files under one owner: none of them is told the
    files are someone else's, while a task running beside them is."""
    repo = new_repo(tmp_path)
    candidates_go, other_go = tmp_path / "candidates-go", tmp_path / "other-go"
    adapters = ["alpha", "beta", "gamma"]
    builds = {
        name: {"phase_instructions": {"build": f"WAIT_FOR {candidates_go} 60\nWRITE f.py N = 1"}}
        for name in adapters
    }
    feature = {
        "id": "feature",
        "prompt": "Add f.py",
        "files": ["f.py"],
        "council": True,
        "adapters": adapters,
        "metadata": {
            "phase_instructions": {"review": "SAY VERDICT: approve", "council": "SAY WINNER: beta"},
            "candidates": builds,
        },
    }
    other = scripted_task(
        "other", ["o.txt"], plan=f"WAIT_FOR {other_go} 60\nSAY FILES: o.txt", build="WRITE o.txt x"
    )
    scripted = {"type": "scripted", "options": {"delay": 0}}
    config = run_config(
        repo,
        [{**feature, "priority": 10}, {**other, "adapters": ["alpha"]}],
        adapters={name: scripted for name in adapters},
        workflow={"phases": [{"name": "plan"}, {"name": "build"}, {"name": "review"}]},
        sandbox={"read": [str(tmp_path)]},  # the CLIs wait for the test's gates
    )
    reports: list[RunReport] = []
    async with Council(config) as council:
        store = council.scheduler.services.store
        contexts = ContextManager(store, repo)

        async def run() -> None:
            reports.append(await council.run())

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            with anyio.fail_after(patience(60)):
                while await context_of(contexts, "feature") is None:
                    await anyio.sleep(0.02)
                other_go.touch()
                while (
                    await status_of(store, "other") != TaskStatus.DONE
                    or await context_of(contexts, "other") is not None
                ):
                    await anyio.sleep(0.02)
                candidates_go.touch()
        assert await contexts.all_contexts() == []

    (report,) = reports
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    logs = repo / ".council" / "logs"
    (other_build,) = logged_prompts(logs, "other", "build")
    assert "- f.py (task feature)" in other_build
    candidate_builds = [
        p for n in (1, 2, 3) for p in logged_prompts(logs, f"feature.c{n}", "build")
    ]
    assert len(candidate_builds) == 3
    assert not any("- f.py (task" in prompt for prompt in candidate_builds)
