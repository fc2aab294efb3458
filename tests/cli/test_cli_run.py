"""``council run`` / ``resume`` / ``status`` as a user runs them: a real process, the real
workflow and the scripted CLI, exit codes, JSON output, the dry run and Ctrl-C."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience

COUNCIL = [sys.executable, "-c", "from orchestrator.cli.app import main; main()"]

CONFIG = """\
repo: repo
adapters:
  fast: {type: scripted, options: {delay: 0}}
default_adapter: fast
capacity: {sessions: 2}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}
tasks:
"""


def council(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}
    return subprocess.run(
        [*COUNCIL, *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=patience(60)
    )


def write_config(tmp_path: Path, tasks: str) -> Path:
    new_repo(tmp_path)
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG + tasks)
    return path


TWO_TASKS = """\
  - {id: one, prompt: "WRITE one.txt first", files: [one.txt]}
  - {id: two, prompt: "WRITE two.txt second", depends_on: [one]}
"""


def test_run_json_reports_every_task_and_exits_0(tmp_path: Path) -> None:
    config = write_config(tmp_path, TWO_TASKS)
    done = council("run", str(config), "--json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["status"] == "completed"
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [
        ("one", "done"),
        ("two", "done"),
    ]
    assert report["totals"]["done"] == 2
    assert merged_tasks(tmp_path / "repo") == ["one", "two"]

    status = council("status", str(config), "--json", cwd=tmp_path)
    assert status.returncode == 0
    assert json.loads(status.stdout)["session_id"] == report["session_id"]
    table = council("status", cwd=tmp_path / "repo")
    assert table.returncode == 0 and "2/2 done" in table.stdout


def test_a_failed_task_exits_1_and_a_bad_config_exits_2(tmp_path: Path) -> None:
    config = write_config(tmp_path, '  - {id: broken, prompt: "AUTH_ERROR"}\n')
    failed = council("run", str(config), "--json", cwd=tmp_path)
    assert failed.returncode == 1
    task = json.loads(failed.stdout)["tasks"][0]
    assert task["status"] == "failed" and task["attempts"] == 1  # auth: never retried

    bad = tmp_path / "bad.yaml"
    bad.write_text("repo: repo\ntasks:\n  - {id: Bad Id, prompt: x}\n")
    refused = council("run", str(bad), cwd=tmp_path)
    assert refused.returncode == 2
    assert "bad.yaml:3" in refused.stderr


def test_dry_run_prints_the_plan_and_runs_nothing(tmp_path: Path) -> None:
    config = write_config(tmp_path, TWO_TASKS)
    plain = council("run", str(config), "--dry-run", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[1] == "1. one (priority 0, files one.txt)"
    assert lines[2].startswith("   build [fast]: ") and lines[2].endswith(
        "-p 'WRITE one.txt first'"
    )
    assert lines[3] == "2. two (priority 0, after one)"

    as_json = council("run", str(config), "--dry-run", "--json", cwd=tmp_path)
    plan = json.loads(as_json.stdout)
    assert [t["task_id"] for t in plan["tasks"]] == ["one", "two"]
    assert not (tmp_path / "repo" / ".council" / "state").exists()


def test_dry_run_of_a_council_task_lists_its_candidates_and_judge(tmp_path: Path) -> None:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.replace("default_adapter: fast\n", "").replace(
            "fast: {type: scripted, options: {delay: 0}}",
            "a: {type: scripted}\n  b: {type: scripted}",
        )
        + '  - {id: pick, prompt: "WRITE p.txt x", council: true, adapters: [a, b]}\n'
    )
    plain = council("run", str(config), "--dry-run", cwd=tmp_path)
    assert plain.returncode == 0, plain.stderr
    lines = plain.stdout.splitlines()
    assert lines[1] == "1. pick (priority 0)"
    assert (
        lines[2] == "   council of 2 candidates; if more than one passes, a picks the one merged:"
    )
    assert lines[3] == "   - pick.c1"
    assert lines[4].startswith("     build [a]: ")
    assert lines[5] == "   - pick.c2"
    assert lines[6].startswith("     build [b]: ")

    plan = json.loads(council("run", str(config), "--dry-run", "--json", cwd=tmp_path).stdout)
    (task,) = plan["tasks"]
    assert task["phases"] == [] and task["judge"] == "a"
    assert [(c["task_id"], c["phases"][0]["adapters"]) for c in task["candidates"]] == [
        ("pick.c1", ["a"]),
        ("pick.c2", ["b"]),
    ]
    assert not (tmp_path / "repo" / ".council").exists()


def test_ctrl_c_interrupts_with_130_and_resume_finishes(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '  - {id: slow, prompt: "SLEEP 30\\nWRITE slow.txt done"}\n'
        '  - {id: fast, prompt: "WRITE fast.txt done"}\n',
    )
    env = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}
    process = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    repo = tmp_path / "repo"
    deadline = time.monotonic() + 30
    while merged_tasks(repo) != ["fast"] and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=patience(30))

    assert process.returncode == 130, err
    report = json.loads(out)
    assert report["status"] == "interrupted"
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "slow": "queued",
        "fast": "done",
    }

    (config.parent / "run.yaml").write_text(config.read_text().replace("SLEEP 30\\n", ""))
    resumed = council("resume", str(config), "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["session_id"] == report["session_id"]
    assert sorted(merged_tasks(repo)) == ["fast", "slow"]
