"""A task's worktree deleted by hand (``rm -rf``) in the middle of ``council run``: a real
process, the real workflow and the scripted CLI.

Between phases (the task parked on a rate limit after its build), the next attempt checks the
branch out again. While its CLI runs, the run notices at its next tick (the scheduler's
reconcile), stops that CLI and puts the task back in the queue without counting a failure.
Either way the task resumes from its branch: the build committed before the removal is not
lost and is not run again, and the run completes."""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cli_process_helpers import (
    events,
    file_on,
    reap,
    scripted_clis,
    seen,
    sleeping,
    spawn,
    task_states,
    wait_for,
)
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience

CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
workflow: {phases: [{name: build}, {name: review}]}
retry: {max_retries: 3, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
"""


def task(review: str) -> str:
    instructions = {"build": "WRITE built.txt built", "review": review}
    entry: dict[str, Any] = {
        "id": "busy",
        "prompt": "Build built.txt.",
        "metadata": {"phase_instructions": instructions},
    }
    return f"  - {json.dumps(entry)}\n"


def cli_runs(repo: Path, phase: str) -> int:
    """How many times the scripted CLI ran for the task's ``phase`` (one turn each)."""
    sessions = repo / ".council" / "homes" / "busy" / "cli" / phase / ".scripted-cli" / "sessions"
    return sum(len(json.loads(path.read_text())["turns"]) for path in sessions.glob("*.json"))


def start(tmp_path: Path, review: str) -> tuple[Path, subprocess.Popen[str]]:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + task(review))
    return repo, spawn("run", config, "--json", cwd=tmp_path)


def worktree_of(repo: Path) -> tuple[Path, str]:
    """The task's worktree and branch, from the event log (read without the store's locks,
    which a frozen orchestrator may hold)."""
    (created,) = [e["data"] for e in events(repo) if e["type"] == "worktree.created"]
    return Path(created["path"]), created["branch"]


def finish(process: subprocess.Popen[str]) -> dict[str, Any]:
    out, err = process.communicate(timeout=patience(90))
    assert process.returncode == 0, err
    report: dict[str, Any] = json.loads(out)
    return report


def assert_completed_from_the_branch(repo: Path, report: dict[str, Any]) -> None:
    assert report["status"] == "completed"
    assert merged_tasks(repo) == ["busy"]
    assert file_on(repo, "main", "built.txt") == "built\n"  # committed before the removal
    assert cli_runs(repo, "build") == 1  # the completed build was not run again
    assert seen(repo, "worktree.recreated")


def test_removed_between_phases_the_next_attempt_checks_the_branch_out_again(
    tmp_path: Path,
) -> None:
    repo, process = start(tmp_path, "RATE_LIMIT reset=8\nSAY VERDICT: approve")
    # The park (8 s) is the window the test freezes the run in: wide enough for a loaded machine.
    try:
        wait_for(lambda: seen(repo, "adapter.parked", task_id="busy"), "the review to park")
        process.send_signal(signal.SIGSTOP)  # so the removal surely falls between attempts
        try:
            assert not scripted_clis(tmp_path)
            worktree, branch = worktree_of(repo)
            assert file_on(repo, branch, "built.txt") == "built\n"
            shutil.rmtree(worktree)
        finally:
            process.send_signal(signal.SIGCONT)
        report = finish(process)
    finally:
        reap(process)
    assert_completed_from_the_branch(repo, report)


def test_removed_while_its_cli_runs_the_run_notices_and_resumes_from_the_branch(
    tmp_path: Path,
) -> None:
    repo, process = start(tmp_path, "SLEEP 3\nWRITE reviewed.txt yes\nSAY VERDICT: approve")
    try:
        wait_for(lambda: seen(repo, "phase.started", task_id="busy", phase="review"), "the review")
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the review's CLI")
        shutil.rmtree(worktree_of(repo)[0])
        report = finish(process)
    finally:
        reap(process)
    assert_completed_from_the_branch(repo, report)
    # Noticed while the CLI ran: it was stopped (not left to fail in a vanished directory),
    # and the task went back to the queue without a failure counted against it.
    assert seen(repo, "task.worktree_lost", task_id="busy")
    assert seen(repo, "phase.stopped", task_id="busy", phase="review", outcome="cancelled")
    metadata = task_states(repo)["busy"].metadata
    assert metadata.get("failures", 0) == 0 and metadata["worktree_losses"] == 1
    assert cli_runs(repo, "review") == 2
    # The review that ran again, in the worktree checked out again, kept its edit.
    assert file_on(repo, "main", "reviewed.txt") == "yes\n"
