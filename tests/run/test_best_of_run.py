"""Council mode end to end: the real workflow and the scripted CLI run three candidates of one
task in parallel, a comparison picks one, only the winner is merged and every branch is kept."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.council import Council
from orchestrator.events import Event
from orchestrator.models import TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.state.protocol import StateStore
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config
from tests.support.timing import patience
from tests.support.worktree_helpers import git

ADAPTERS = ["alpha", "beta", "gamma"]


def council_task(judge: str, builds: dict[str, str], **fields: Any) -> dict[str, Any]:
    """A best-of-3 task: each candidate writes its own feature.py; ``judge`` is what the
    comparing CLI answers."""
    candidates = {name: {"phase_instructions": {"build": build}} for name, build in builds.items()}
    return {
        "id": "feature",
        "prompt": "Add feature.py",
        "council": True,
        "adapters": ADAPTERS,
        "metadata": {
            "phase_instructions": {"review": "SAY VERDICT: approve", "council": judge},
            "candidates": candidates,
        },
        **fields,
    }


async def run(repo: Path, tasks: list[dict[str, Any]], events: list[Event]) -> RunReport:
    scripted = {"type": "scripted", "options": {"delay": 0}}
    config = run_config(
        repo,
        tasks,
        adapters={name: scripted for name in ADAPTERS},
        workflow={"phases": [{"name": "build"}, {"name": "review"}]},
        retry={"max_retries": 1, "backoff_initial": 0.05, "backoff_max": 0.1},
    )
    async with Council(config) as council:
        council.subscribe(events.append)
        return await council.run()


async def claimed(store: StateStore, task_id: str) -> bool:
    state = await store.get_task_state(task_id)
    return state is not None and state.status == TaskStatus.RUNNING and state.claim is not None


def council_branches(repo: Path) -> list[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", "refs/heads/council/feature/")
    return sorted(out.split())


async def test_best_of_three_merges_only_the_winner_and_keeps_every_branch(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    builds = {name: f"WRITE feature.py NAME = {name!r}" for name in ADAPTERS}
    tasks = [
        council_task("SAY beta's version is the cleanest.\nSAY WINNER: beta", builds),
        {"id": "other", "prompt": "WRITE other.txt fine", "adapters": ["alpha"]},
    ]
    events: list[Event] = []

    report = await run(repo, tasks, events)

    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert sorted(merged_tasks(repo)) == ["feature", "other"]  # one landing for the council
    assert git(repo, "show", "main:feature.py") == "NAME = 'beta'"
    feature = report.task("feature")
    assert feature.status == TaskStatus.DONE and feature.adapter == "beta"
    assert [(c.task_id, c.adapter) for c in feature.candidates] == [
        ("feature.c1", "alpha"),
        ("feature.c2", "beta"),
        ("feature.c3", "gamma"),
    ]
    assert [c.chosen for c in feature.candidates] == [False, True, False]
    assert [c.status for c in feature.candidates] == ["cancelled", "done", "cancelled"]
    # Every candidate worked on its own branch. The losers' branches are kept; the winner's
    # went the way of any merged branch once the base contained its tip.
    branches = council_branches(repo)
    assert sorted(str(c.branch) for c in feature.candidates) == [
        "council/feature/1",
        "council/feature/2",
        "council/feature/3",
    ]
    losers = [c for c in feature.candidates if not c.chosen]
    assert branches == sorted(str(c.branch) for c in losers)
    for candidate in losers:
        name = candidate.adapter
        assert git(repo, "show", f"{candidate.branch}:feature.py") == f"NAME = {name!r}"
    # The three ran in parallel: all were dispatched before the first one was ready.
    kinds = [(e.type, e.data.get("task_id")) for e in events]
    dispatched = [i for i, (t, task) in enumerate(kinds) if t == "task.dispatched"]
    candidate_dispatches = [i for i in dispatched if str(kinds[i][1]).startswith("feature.c")]
    first_ready = next(i for i, (t, _) in enumerate(kinds) if t == "council.candidate_ready")
    # (A candidate may be dispatched again later: the helpers' 1 s lease lapses when a loaded
    # machine stalls the loop, and the sweep gives it back; what matters is that all three
    # were under way at once.)
    before_ready = {str(kinds[i][1]) for i in candidate_dispatches if i < first_ready}
    assert before_ready == {"feature.c1", "feature.c2", "feature.c3"}, kinds
    winner = [e.data for e in events if e.type == "council.winner"]
    assert winner == [{"task_id": "feature", "candidate": "feature.c2", "adapter": "beta"}]
    assert git(repo, "worktree", "list", "--porcelain").count("worktree ") == 1


async def test_a_failing_candidate_does_not_block_the_others(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    builds = {
        "alpha": "WRITE feature.py NAME = 'alpha'",
        "beta": "FAIL beta cannot do this",
        "gamma": "WRITE feature.py NAME = 'gamma'",
    }
    events: list[Event] = []

    report = await run(repo, [council_task("SAY WINNER: gamma", builds)], events)

    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert merged_tasks(repo) == ["feature"]
    assert git(repo, "show", "main:feature.py") == "NAME = 'gamma'"
    feature = report.task("feature")
    by_adapter = {c.adapter: c for c in feature.candidates}
    assert by_adapter["beta"].status == "failed"
    assert (
        by_adapter["beta"].error is not None and "beta cannot do this" in by_adapter["beta"].error
    )
    assert by_adapter["gamma"].chosen and by_adapter["gamma"].status == "done"
    assert by_adapter["alpha"].status == "cancelled" and not by_adapter["alpha"].chosen
    # The failed candidate's branch is kept too, with the loser's.
    assert council_branches(repo) == sorted(
        str(c.branch) for c in feature.candidates if not c.chosen
    )


async def test_no_passing_candidate_fails_the_council_task(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    builds = {name: f"FAIL {name} gives up" for name in ADAPTERS}
    events: list[Event] = []

    report = await run(
        repo,
        [
            council_task("SAY WINNER: alpha", builds),
            {"id": "after", "prompt": "WRITE after.txt x", "depends_on": ["feature"]},
        ],
        events,
    )

    feature = report.task("feature")
    assert feature.status == TaskStatus.FAILED
    assert feature.error is not None and "no candidate passed" in feature.error
    assert "gamma gives up" in feature.error
    assert report.task("after").status == TaskStatus.FAILED  # its dependency never merged
    assert merged_tasks(repo) == []
    assert all(c.status == "failed" and not c.chosen for c in feature.candidates)


async def test_a_killed_council_run_resumes_and_still_merges_one_candidate(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    builds = {name: f"WRITE feature.py NAME = {name!r}\nSLEEP 0.5" for name in ADAPTERS}
    config = run_config(
        repo,
        [council_task("SAY WINNER: gamma", builds)],
        adapters={name: {"type": "scripted", "options": {"delay": 0}} for name in ADAPTERS},
        workflow={"phases": [{"name": "build"}, {"name": "review"}]},
    )
    ids = [f"feature.c{k}" for k in (1, 2, 3)]
    async with Council(config) as council:
        store = council.scheduler.services.store
        async with anyio.create_task_group() as group:
            group.start_soon(council.run)
            with anyio.fail_after(patience(20)):
                while not all([await claimed(store, task_id) for task_id in ids]):
                    await anyio.sleep(0.02)
            council.kill()  # all three candidates are running: each is given back, uncounted
        session_id = council.session_id
        left = [await store.get_task_state(task_id) for task_id in ids]
    assert session_id is not None
    assert [(s.status, s.attempt) if s else None for s in left] == [(TaskStatus.QUEUED, 0)] * 3

    async with Council(config) as council:
        report = await council.resume(session_id)

    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert merged_tasks(repo) == ["feature"]
    assert git(repo, "show", "main:feature.py") == "NAME = 'gamma'"
    feature = report.task("feature")
    assert feature.adapter == "gamma"
    assert [c.status for c in feature.candidates] == ["cancelled", "cancelled", "done"]


# The judging CLI as a Python program: it tries to write into the repository, then answers the
# review (its verdict) and the comparison (the winner) alike. No braces: the command adapter
# reads them as placeholders.
_PROBING_JUDGE = """\
import pathlib, sys
try:
    (pathlib.Path(sys.argv[1]) / "judged.txt").write_text("x")
except OSError:
    pass
print("VERDICT: approve")
print("WINNER: beta")
"""


@pytest.mark.sandbox
async def test_the_judge_runs_in_the_sandbox_like_every_cli(tmp_path: Path) -> None:
    """The comparing CLI runs outside every worktree, in a directory of its own: confined all
    the same, the repository read-only to it."""
    repo = new_repo(tmp_path)
    builds = {name: f"WRITE feature.py NAME = {name!r}" for name in ADAPTERS}
    scripted = {"type": "scripted", "options": {"delay": 0}}
    judge = {
        "type": "command",
        "options": {
            "binary": sys.executable,
            "args": ["-c", _PROBING_JUDGE, str(repo), "{prompt}"],
            "output": "text",
            "success_pattern": "^WINNER",
        },
    }
    config = run_config(
        repo,
        [council_task("(the judge's own program answers)", builds)],
        adapters={**{name: scripted for name in ADAPTERS}, "judge": judge},
        workflow={"phases": [{"name": "build"}, {"name": "review", "adapter": "judge"}]},
        sandbox="bubblewrap",
    )
    async with Council(config) as council:
        report = await council.run()

    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert git(repo, "show", "main:feature.py") == "NAME = 'beta'"
    assert not (repo / "judged.txt").exists()
