"""Blame is exact, through the real orchestrator (``Council``) with real git and real CLI
processes (``fault_clis/neighbours.py``), two sessions side by side:

- a CLI committing on its own session branch (aider's default) is its work: both land, on the
  first attempt;
- a CLI checking the base out in its own worktree is traced by that worktree's admin
  directory: only it is blocked, its sibling lands on the first attempt;
- a CLI adding to the shared ``.git/config`` cannot be traced: the change is undone and both
  sessions are rechecked (retried, not counted as failed attempts: even with
  ``max_retries: 0``), neither fails for good, both land;
- a CLI deleting its sibling's admin directory (``.git/worktrees/<name>``): the sibling's
  checkout is given back to git before anything else touches it, its edits committed on its
  branch, both sessions named and retried, both land; nothing is lost.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import anyio

from tests.support.fault_helpers import TASK, FaultRun
from tests.support.merge_repo import git

NEIGHBOURS = "neighbours.py"
SIBLING = "sibling"
RETRIES = {"max_retries": 2, "backoff_initial": 0.05, "backoff_max": 0.1}

# What the orchestrator's own checks do where there is no sandbox: under one, none of these
# CLIs could write where they write (``test_sandbox_escapes.py``).
UNCONFINED = "none"


def side_by_side(
    tmp_path: Path,
    does: dict[str, str],
    sibling: dict[str, str],
    retry: dict[str, Any] | None = None,
) -> FaultRun:
    """``fault`` runs ``neighbours.py`` with ``does``, ``sibling`` with ``sibling``, at once."""
    run = FaultRun(
        tmp_path,
        NEIGHBOURS,
        env={"FAULT_WORK": "fault.txt", "FAULT_WAIT_FOR": "sibling.txt", **does},
        more={
            SIBLING: (NEIGHBOURS, {"FAULT_DOES": "work", "FAULT_WORK": "sibling.txt", **sibling})
        },
        sandbox=UNCONFINED,
    )
    if retry is not None:
        run.retry = retry
    run.write_config()
    return run


async def run_within(run: FaultRun, seconds: float = 60.0) -> dict[str, Any]:
    with anyio.fail_after(seconds):
        return await run.run_here()


def errors(run: FaultRun) -> dict[str, str | None]:
    return {task: run.state(task)["error"] for task in (TASK, SIBLING)}


def retried(run: FaultRun) -> dict[str, list[str]]:
    found: dict[str, list[str]] = {TASK: [], SIBLING: []}
    for event in run.events("task.retry"):
        found[event["data"]["task_id"]].append(event["data"]["error"])
    return found


async def test_a_cli_committing_on_its_own_branch_beside_a_sibling_both_land(
    tmp_path: Path,
) -> None:
    run = side_by_side(
        tmp_path,
        {"FAULT_DOES": "commit", "FAULT_SLEEP": "1.5"},
        {"FAULT_SLEEP": "1.5"},
    )  # no retries: a blamed session would fail for good
    report = await run_within(run)

    assert report["totals"]["done"] == 2, errors(run)
    assert run.state()["attempt"] == 1 and run.state(SIBLING)["attempt"] == 1
    assert run.on_main("fault.txt") and run.on_main("sibling.txt")
    log = git(run.repo, "log", "--format=%s", "main")
    assert "aider: fault.txt" in log  # the CLI's own commit is what landed


async def test_a_cli_checking_the_base_out_in_its_own_worktree_is_the_only_one_blamed(
    tmp_path: Path,
) -> None:
    run = side_by_side(
        tmp_path,
        {"FAULT_DOES": "switch-base", "FAULT_SLEEP": "0.5"},
        {"FAULT_SLEEP": "2"},
        retry=RETRIES,  # retries on offer: the culprit is still not retried
    )
    before = git(run.repo, "rev-parse", "main")
    report = await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["attempt"] == 1, state["error"]
    assert state["error"].startswith("blocked, not merged: the CLI changed outside its worktree")
    assert "has the base branch main checked out (detached" in state["error"]
    sibling = run.state(SIBLING)
    assert sibling["status"] == "done" and sibling["attempt"] == 1, sibling["error"]
    assert report["totals"]["done"] == 1
    assert run.on_main("sibling.txt") and not run.on_main("fault.txt")
    assert git(run.repo, "rev-list", "--count", f"{before}..main") != "0"


async def test_an_untraceable_config_change_beside_a_sibling_retries_both(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "config-changed"
    run = side_by_side(
        tmp_path,
        {"FAULT_DOES": "config-once", "FAULT_MARKER": str(marker), "FAULT_SLEEP": "1"},
        {"FAULT_SLEEP": "1.5"},
    )  # max_retries 0: a recheck is not a failed attempt
    config = (run.repo / ".git" / "config").read_bytes()
    report = await run_within(run)

    assert marker.exists()
    assert (run.repo / ".git" / "config").read_bytes() == config  # undone
    assert report["totals"]["done"] == 2, errors(run)
    assert run.on_main("fault.txt") and run.on_main("sibling.txt")
    for task, said in retried(run).items():
        assert said, f"{task} was not rechecked"
        assert run.state(task)["metadata"]["rechecks"] == 1
        assert run.state(task)["metadata"].get("failures", 0) == 0
        assert "rechecked, to run again" in said[0] and "added alias.st=status" in said[0]
        assert "council/fault/1, council/sibling/1 ran then" in said[0]


async def test_a_cli_deleting_its_siblings_admin_dir_loses_nothing_and_both_land(
    tmp_path: Path,
) -> None:
    marker = tmp_path / "deleted"
    run = side_by_side(
        tmp_path,
        {
            "FAULT_DOES": "delete-admin",
            "FAULT_MARKER": str(marker),
        },
        {"FAULT_SLEEP": "2.5"},
    )  # max_retries 0: a recheck is not a failed attempt
    report = await run_within(run)

    assert marker.exists()
    assert report["totals"]["done"] == 2, errors(run)
    assert run.on_main("fault.txt") and run.on_main("sibling.txt")
    said = retried(run)
    assert said[SIBLING] and said[TASK], said
    for line in (said[SIBLING][0], said[TASK][0]):
        assert ".council/worktrees/" in line and "its git admin directory was deleted" in line
        assert "council/fault/1, council/sibling/1 ran then" in line  # the deleter named
    # The sibling's edits, loose while git did not know them, were committed on its branch,
    # then kept on a rescue ref when its build ran again from its start (never on top).
    rescued = git(run.repo, "log", "--format=%s", "--glob=refs/council/rescue-phase/*")
    assert "council: sibling build stopped (failed)" in rescued, rescued
    commits = git(run.repo, "log", "--format=%s", "main")
    assert "stopped" not in commits, commits
    assert run.state(SIBLING)["status"] == "done"


async def test_a_cli_deleting_a_kept_worktrees_admin_dir_while_it_runs_alone_is_named(
    tmp_path: Path,
) -> None:
    # The victim's first attempt failed (its worktree kept for the retry); the deleter then
    # runs alone and cuts that worktree off from git: it is the only one that could have.
    run = FaultRun(
        tmp_path,
        NEIGHBOURS,
        sandbox=UNCONFINED,
        env={
            "FAULT_DOES": "delete-admin",
            "FAULT_MARKER": str(tmp_path / "deleted"),
            "FAULT_WAIT_FOR": "victim.txt",
            "FAULT_WORK": "fault.txt",
        },
        more={
            "victim": (
                NEIGHBOURS,
                {
                    "FAULT_DOES": "fail-once",
                    "FAULT_MARKER": str(tmp_path / "failed"),
                    "FAULT_WORK": "victim.txt",
                },
            )
        },
    )
    config = run.config()
    config["capacity"] = {"sessions": 1}
    config["tasks"][1]["priority"] = 10  # the victim first; the deleter during its backoff
    config["retry"] = {"max_retries": 2, "backoff_initial": 1.0, "backoff_max": 1.0}
    run.config_path.write_text(json.dumps(config))
    report = await run_within(run)

    state = run.state()
    assert state["status"] == "failed" and state["attempt"] == 1, state["error"]
    assert state["error"].startswith("blocked, not merged: the CLI changed outside its worktree")
    assert "its git admin directory was deleted (its admin directory" in state["error"]
    assert "recreated on council/victim/1" in state["error"]
    victim = run.state("victim")
    assert victim["status"] == "done" and victim["attempt"] == 2, victim["error"]
    assert report["totals"]["done"] == 1
    assert run.on_main("victim.txt") and not run.on_main("fault.txt")
