"""A stop is never a failure: Ctrl-C typed at a real terminal, where the terminal itself sends
SIGINT to its whole foreground process group (not only to council), stops the run as council
decides. The CLIs lead process groups of their own, outside the terminal's foreground group, so
the key never reaches them: the build they were doing is neither a failed attempt nor a retry,
and after ``council resume`` the task is done in one attempt."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path

from tests.support.cli_process_helpers import (
    council,
    reap,
    scripted_clis,
    seen,
    sleeping,
    spawn,
    task_states,
    wait_for,
)
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.terminal import Terminal, shell_council

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


def test_ctrl_c_typed_at_the_terminal_stops_the_build_without_charging_an_attempt(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    terminal = Terminal(["run", config], tmp_path, columns=100, controlling=True)
    try:
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the build's CLI to sleep")
        # The terminal's foreground group is council's; the CLI is in none of it.
        council_group = os.getpgid(terminal.process.pid)
        assert terminal.foreground_group() == council_group
        (cli,) = scripted_clis(tmp_path)
        assert os.getpgid(cli) != council_group
        terminal.type(b"\x03")
        code = terminal.wait(60)
    finally:
        terminal.kill()

    assert code == 130, terminal.raw.decode(errors="replace")[-2000:]
    assert not scripted_clis(tmp_path)
    # Stopped by the user: not a failure, no retry scheduled, no attempt counted.
    assert not seen(repo, "task.retry")
    assert not seen(repo, "task.failed")
    state = task_states(repo)["slow"]
    assert state.status == "queued"
    assert state.attempt == 0
    assert state.metadata.get("failures", 0) == 0

    config.write_text(CONFIG.replace("SLEEP 60\\n", ""))
    resumed = council("resume", config, cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    status = council("status", config, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    report = json.loads(status.stdout)
    (task,) = report["tasks"]
    assert (task["task_id"], task["status"], task["attempts"]) == ("slow", "done", 1)
    assert report["status"] == "completed"
    assert merged_tasks(repo) == ["slow"]


# Two CLIs at once: one sleeps (stopped by the stop), one waits for the test's gate (what it
# does once opened is written after the reader went away).
PIPED = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
capacity: {sessions: 2}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: slow, prompt: "WRITE slow-draft.txt draft\\nSLEEP 60\\nWRITE slow.txt done"}
  - {id: gated, prompt: "WAIT_FOR GATE\\nWRITE gated.txt done"}
"""


def piped_config(tmp_path: Path) -> tuple[Path, Path, Path]:
    repo = new_repo(tmp_path)
    gate = tmp_path / "gate"
    config = tmp_path / "run.yaml"
    sandbox = f"sandbox: {{read: [{tmp_path}]}}\n"  # the gate is outside the worktree
    config.write_text(sandbox + PIPED.replace("GATE", str(gate)))
    return repo, config, gate


def both_running(tmp_path: Path) -> bool:
    """Both CLIs run, the slow one in its sleep."""
    clis = scripted_clis(tmp_path)
    return len(clis) == 2 and any(map(sleeping, clis))


def stopped_and_resumable(tmp_path: Path, repo: Path, config: Path) -> None:
    """The run ended interrupted with nothing left running, and `council resume` finishes it,
    each task done in one attempt."""
    assert not scripted_clis(tmp_path)
    status = council("status", config, "--json", cwd=tmp_path)
    report = json.loads(status.stdout)
    assert report["status"] == "interrupted"
    tasks = {task["task_id"]: task for task in report["tasks"]}
    assert tasks["slow"]["status"] == "queued" and tasks["slow"]["attempts"] == 0
    for state in task_states(repo).values():
        assert state.status != "running"
        assert state.claim is None or state.claim.status != "active"
        assert state.metadata.get("failures", 0) == 0

    config.write_text(config.read_text().replace("SLEEP 60\\n", ""))
    resumed = council("resume", config, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    done = json.loads(resumed.stdout)
    assert done["session_id"] == report["session_id"]
    assert {t["task_id"]: (t["status"], t["attempts"]) for t in done["tasks"]} == {
        "slow": ("done", 1),
        "gated": ("done", 1),
    }


def test_a_reader_that_closes_the_pipe_stops_the_run_resumable_exit_141(tmp_path: Path) -> None:
    repo, config, gate = piped_config(tmp_path)
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: both_running(tmp_path), "both CLIs to run")
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()  # the reader goes away (`| head -1` once it has its line)
        gate.touch()  # the gated build ends: its line is written to the closed pipe
        code = process.wait(timeout=90)
        err = process.stderr.read()
        process.stderr.close()
    finally:
        reap(process)

    assert code == 141, err
    said = [line for line in err.splitlines() if "broken pipe" in line]
    assert len(said) == 1, err
    assert "Traceback" not in err and "Exception ignored" not in err
    assert "event subscriber" not in err
    stopped_and_resumable(tmp_path, repo, config)


def test_ctrl_c_on_a_pipeline_into_cat_stops_the_run_resumable_exit_130(tmp_path: Path) -> None:
    # `council run | cat` in a shell, Ctrl-C typed: the terminal sends SIGINT to council and
    # to cat, and council's next line finds the pipe broken.
    repo, config, gate = piped_config(tmp_path)
    pipeline = f"{shell_council('run', config)} | cat; exit ${{PIPESTATUS[0]}}"
    command = ["bash", "-c", pipeline]
    terminal = Terminal([], tmp_path, columns=100, controlling=True, command=command)
    try:
        wait_for(lambda: both_running(tmp_path), "both CLIs to run")
        terminal.type(b"\x03")
        terminal.read_until(lambda screen: "stopping" in screen)
        gate.touch()
        code = terminal.wait(90)
    finally:
        terminal.kill()

    shown = terminal.raw.decode(errors="replace")
    assert code == 130, shown[-2000:]
    assert "Traceback" not in shown and "event subscriber" not in shown
    assert shown.count("stopping:") == 1, shown[-2000:]
    stopped_and_resumable(tmp_path, repo, config)


def test_ctrl_c_after_the_reader_went_away_says_the_stop_once(tmp_path: Path) -> None:
    # The race of `council run | cat` and Ctrl-C, the other way round: the broken pipe is
    # found (and said) first, then the signal arrives while the stop is under way.
    repo, config, gate = piped_config(tmp_path)
    stubborn = config.read_text().replace('"WRITE slow-draft', '"IGNORE_TERM\\nWRITE slow-draft')
    config.write_text(stubborn)  # the slow CLI waits out the grace period: the stop lasts
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: both_running(tmp_path), "both CLIs to run")
        assert process.stdout is not None and process.stderr is not None
        process.stdout.close()
        gate.touch()
        said = []
        for line in process.stderr:
            said.append(line)
            if "broken pipe" in line:
                break
        process.send_signal(signal.SIGINT)
        code = process.wait(timeout=90)
        err = "".join(said) + process.stderr.read()
        process.stderr.close()
    finally:
        reap(process)

    assert code == 130, err  # a signal stopped it too
    assert [line for line in err.splitlines() if "stopping" in line] == [
        "stopping: the output's reader went away (broken pipe); running sessions commit their "
        "work, and council resume goes on"
    ], err
    assert "Traceback" not in err
    config.write_text(stubborn.replace("IGNORE_TERM\\n", ""))
    stopped_and_resumable(tmp_path, repo, config)
