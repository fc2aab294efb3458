"""Every refusal before any change: a run an interrupted session blocks is refused before
``--if-base-dirty detach`` touches the user's checkout; a cancelled task never blocks a new run,
and a session whose only unfinished task was cancelled ends ``cancelled``, not ``failed``."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from tests.support.cli_process_helpers import (
    council,
    reap,
    scripted_clis,
    sleeping,
    spawn,
    wait_for,
)
from tests.support.scheduler_helpers import new_repo
from tests.support.worktree_helpers import git

CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: slow, prompt: "WRITE slow-draft.txt draft\\nSLEEP 60\\nWRITE slow.txt done"}
"""


def interrupted_run(tmp_path: Path) -> tuple[Path, Path]:
    """A run of the slow task, stopped by SIGINT while its CLI sleeps: session interrupted."""
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    process = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the CLI to sleep")
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=60)
    finally:
        reap(process)
    assert process.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted"
    config.write_text(CONFIG.replace("SLEEP 60\\n", ""))
    return repo, config


def head_of(repo: Path) -> str:
    return git(repo, "symbolic-ref", "-q", "HEAD", check=False) or "detached"


def test_detach_with_an_interrupted_session_refuses_and_leaves_the_checkout_on_its_branch(
    tmp_path: Path,
) -> None:
    repo, config = interrupted_run(tmp_path)
    (repo / "README.md").write_text("the user's own edit\n")  # the base's checkout is dirty
    refused = council("run", config, "--if-base-dirty", "detach", cwd=tmp_path)
    assert refused.returncode != 0
    assert "council resume" in refused.stderr or "cancel" in refused.stderr, refused.stderr
    assert "detached" not in refused.stderr
    assert head_of(repo) == "refs/heads/main"
    assert (repo / "README.md").read_text() == "the user's own edit\n"


def test_a_cancelled_task_never_blocks_a_new_run(tmp_path: Path) -> None:
    _, config = interrupted_run(tmp_path)
    cancelled = council("cancel", config, "slow", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    again = council("run", config, "--json", cwd=tmp_path)
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert report["status"] == "completed"
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [("slow", "done")]


def test_a_session_whose_task_was_cancelled_ends_cancelled_not_failed(tmp_path: Path) -> None:
    _, config = interrupted_run(tmp_path)
    cancelled = council("cancel", config, "slow", cwd=tmp_path)
    assert cancelled.returncode == 0, cancelled.stderr
    resumed = council("resume", config, "--json", cwd=tmp_path)
    report = json.loads(resumed.stdout)
    assert report["status"] == "cancelled", resumed.stderr
    assert report["totals"]["cancelled"] == 1 and report["totals"]["failed"] == 0
