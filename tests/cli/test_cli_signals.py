"""Ctrl-C and SIGTERM on ``council run``, a real process with scripted CLIs that sleep.

Once (SIGINT or SIGTERM): nothing new is dispatched, the CLIs are stopped within the grace
period (SIGTERM, then SIGKILL for one that ignores it), what they wrote is committed on their
branches, their claims are released, the command exits 130, and ``council resume`` completes
the run with that work. Twice: the second signal kills at once, CLIs included, exit 130, and
the state is still good for ``council resume``."""

from __future__ import annotations

import json
import signal
import subprocess
from pathlib import Path

import pytest

from orchestrator.models import ClaimStatus
from tests.support.cli_process_helpers import (
    council,
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
capacity: {sessions: 2}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
"""

SLOW = '  - {id: slow, prompt: "WRITE slow-draft.txt draft\\nSLEEP 60\\nWRITE slow.txt done"}\n'
# Ignores SIGTERM: only the SIGKILL at the end of the grace period stops it.
STUBBORN = (
    '  - {id: stubborn, prompt: "IGNORE_TERM\\nWRITE stubborn-draft.txt draft\\nSLEEP 60\\n'
    'WRITE stubborn.txt done"}\n'
)
# Waits for a slot the two above hold: a stopping run must not start it.
WAITING = '  - {id: waiting, prompt: "WRITE waiting.txt done"}\n'


def start(tmp_path: Path, tasks: str) -> tuple[Path, Path, subprocess.Popen[str]]:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + tasks)
    return repo, config, spawn("run", config, "--json", cwd=tmp_path)


def both_sleeping(tmp_path: Path) -> bool:
    """Both CLIs are in their SLEEP, so each has written its draft."""
    clis = scripted_clis(tmp_path)
    return len(clis) == 2 and all(map(sleeping, clis))


def resume_completes(tmp_path: Path, config: Path, session_id: str, ids: list[str]) -> None:
    """Resume without the sleeps: every task merges, with the draft its stopped CLI wrote."""
    text = config.read_text().replace("SLEEP 60\\n", "").replace("IGNORE_TERM\\n", "")
    config.write_text(text)
    resumed = council("resume", config, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    report = json.loads(resumed.stdout)
    assert report["session_id"] == session_id
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(ids, "done")
    # A stop is no attempt, a second Ctrl-C's kill included: each task is done in one.
    assert {t["task_id"]: t["attempts"] for t in report["tasks"]} == dict.fromkeys(ids, 1)
    repo = tmp_path / "repo"
    assert sorted(merged_tasks(repo)) == sorted(ids)
    states = task_states(repo)
    for task_id in ids:
        assert file_on(repo, "main", f"{task_id}.txt") == "done\n"
        # The stop cost no attempt: the interrupted conversation was continued, not failed.
        assert states[task_id].metadata.get("failures", 0) == 0, task_id
    assert not scripted_clis(tmp_path)


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_one_signal_stops_gracefully_and_resume_completes(
    tmp_path: Path, signum: signal.Signals
) -> None:
    repo, config, process = start(tmp_path, SLOW + STUBBORN + WAITING)
    try:
        wait_for(lambda: both_sleeping(tmp_path), "both CLIs to sleep")
        process.send_signal(signum)
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)

    assert process.returncode == 130, err
    assert "stopping: no new sessions; running ones commit their work" in err
    report = json.loads(out)
    assert report["status"] == "interrupted"
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "slow": "queued",
        "stubborn": "queued",
        "waiting": "queued",
    }
    # The CLIs are gone, the one that ignored SIGTERM too.
    assert not scripted_clis(tmp_path)
    # Nothing was dispatched once the stop began: the waiting task never started.
    assert not seen(repo, "task.dispatched", task_id="waiting")
    # What each CLI wrote before the stop is committed on its branch, and no claim is held.
    states = task_states(repo)
    for task_id in ("slow", "stubborn"):
        state = states[task_id]
        assert state.branch is not None
        assert file_on(repo, state.branch, f"{task_id}-draft.txt") == "draft\n"
        assert state.claim is not None and state.claim.status == ClaimStatus.ABANDONED
    assert states["waiting"].claim is None
    assert merged_tasks(repo) == []

    resume_completes(tmp_path, config, report["session_id"], ["slow", "stubborn", "waiting"])
    assert file_on(repo, "main", "slow-draft.txt") == "draft\n"
    assert file_on(repo, "main", "stubborn-draft.txt") == "draft\n"


def test_a_second_sigint_kills_at_once_and_resume_still_completes(tmp_path: Path) -> None:
    repo, config, process = start(tmp_path, SLOW + STUBBORN)
    try:
        wait_for(lambda: both_sleeping(tmp_path), "both CLIs to sleep")
        process.send_signal(signal.SIGINT)
        # The graceful stop is under way: the slow task's phase ended, while the stubborn CLI,
        # ignoring SIGTERM, waits out its grace period.
        wait_for(lambda: seen(repo, "phase.stopped", task_id="slow"), "the slow CLI to stop")
        assert len(scripted_clis(tmp_path)) == 1
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)

    assert process.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted"
    assert not scripted_clis(tmp_path)  # the stubborn CLI went with it
    session_id = json.loads(out)["session_id"]
    resume_completes(tmp_path, config, session_id, ["slow", "stubborn"])


def test_a_run_started_with_ctrl_c_ignored_keeps_ignoring_it_and_stops_on_sigterm(
    tmp_path: Path,
) -> None:
    # A script's `council run ... &` starts with SIGINT ignored (POSIX: a Ctrl-C meant for the
    # foreground leaves background jobs alone). Such a run ignored a SIGINT at its first git
    # steps and obeyed one later; it now ignores it throughout, and a plain kill stops it.
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + SLOW + WAITING)
    process = spawn("run", config, "--json", cwd=tmp_path, ignore_sigint=True)
    try:
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the slow CLI to sleep")
        process.send_signal(signal.SIGINT)
        wait_for(lambda: seen(repo, "merge.completed", task_id="waiting"), "the other task to land")
        assert process.poll() is None
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)
    # Heard, the SIGINT would have been the first stop and the SIGTERM a second: a kill.
    assert "killing" not in err, err
    assert process.returncode == 130, err
    assert err.count("stopping: no new sessions") == 1
    report = json.loads(out)
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "slow": "queued",
        "waiting": "done",
    }
