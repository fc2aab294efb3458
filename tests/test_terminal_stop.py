"""A stop is never a failure: Ctrl-C typed at a real terminal, where the terminal itself sends
SIGINT to its whole foreground process group (not only to council), stops the run as council
decides. The CLIs lead process groups of their own, outside the terminal's foreground group, so
the key never reaches them: the build they were doing is neither a failed attempt nor a retry,
and after ``council resume`` the task is done in one attempt."""

from __future__ import annotations

import json
import os
from pathlib import Path

from cli_process_helpers import council, scripted_clis, seen, sleeping, task_states, wait_for
from scheduler_helpers import merged_tasks, new_repo
from terminal import Terminal

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
