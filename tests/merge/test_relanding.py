"""Landed means still landed: a task recorded ``done`` whose landing a person took off the base
(``git reset --hard``, a force-push of the team's remote) lands again from its kept branch, or
the run says so and fails. Real ``council`` processes, real git, the ``scripted`` CLI; the team
tests a real PostgreSQL and a bare remote."""

from __future__ import annotations

import json
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_process_helpers import council, reap, spawn, wait_for
from tests.support.merge_repo import git, init_repo
from tests.support.timing import patience

CONFIG = """\
repo: {repo}
sandbox: {{read: [{gate}]}}
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: 3}}
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 2, backoff_initial: 0.05, backoff_max: 0.3}}
scheduler: {{tick: 0.05}}
landing: {{relanding: {relanding}}}
tasks:
"""


def _task(task_id: str, gate: Path | None = None) -> dict[str, Any]:
    build = f"WRITE tasks/{task_id}.txt done {task_id}"
    if gate is not None:
        build = f"WAIT_FOR {gate} 60\n{build}"
    return {
        "id": task_id,
        "prompt": f"Write tasks/{task_id}.txt.",
        "files": [f"tasks/{task_id}.txt"],
        "metadata": {"phase_instructions": {"build": build}},
    }


def _trailers(repo: Path, ref: str = "main") -> list[str]:
    out = git(
        repo,
        "log",
        "--first-parent",
        "--format=%(trailers:key=Council-Task,valueonly,separator=%x2c)",
        ref,
    )
    return sorted(t for line in out.splitlines() for t in line.split(",") if t)


def _local_run(tmp_path: Path, relanding: str) -> tuple[Path, Path, str, Path]:
    """A repository (main checked out), a config of three tasks (t03 waits for a gate), and
    the run stopped with SIGINT once t01 and t02 landed; then a person resets main behind
    both landings. The repository, the config, the first commit and the gate."""
    repo = init_repo(tmp_path / "repo", checked_out=True)
    first = git(repo, "rev-parse", "HEAD")
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "go"
    config = tmp_path / "run.yaml"
    tasks = [_task("t01"), _task("t02"), _task("t03", gate)]
    config.write_text(
        CONFIG.format(repo=repo, gate=gates, relanding=relanding)
        + "".join(f"  - {json.dumps(t)}\n" for t in tasks)
    )
    process = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: _done(repo) >= {"t01", "t02"}, "t01 and t02 recorded done", 60)
        assert _trailers(repo) == ["t01", "t02"]
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=patience(60))
        assert process.returncode == 130
    finally:
        reap(process)
    # The person: main back to before both landings, in their own checkout.
    git(repo, "reset", "-q", "--hard", first)
    gate.touch()
    return repo, config, first, gate


def _done(repo: Path) -> set[str]:
    """The tasks whose claims were released (in the write that records them done)."""
    if not (repo / ".council" / "events.jsonl").exists():
        return set()
    return {str(e.get("task_id")) for e in _events(repo, "claim.released")}


def _events(repo: Path, kind: str) -> list[dict[str, Any]]:
    lines = (repo / ".council" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines if line.strip()]
    return [e.get("data", e) for e in events if e.get("type") == kind]


def test_landings_reset_off_the_local_base_land_again_on_resume(tmp_path: Path) -> None:
    repo, config, first, _gate = _local_run(tmp_path, "auto")
    resumed = council("resume", config, "--json", cwd=tmp_path, timeout=90)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["totals"]["done"] == 3
    # Each task's work is on main, landed exactly once (the reset's two landings again).
    assert _trailers(repo) == ["t01", "t02", "t03"]
    for task_id in ("t01", "t02", "t03"):
        assert git(repo, "show", f"main:tasks/{task_id}.txt") == f"done {task_id}"
    vanished = {e["task_id"]: e for e in _events(repo, "merge.vanished")}
    assert sorted(vanished) == ["t01", "t02"]
    for task_id, event in vanished.items():
        assert event["action"] == "reland"
        assert event["kept_branch"]
        # The landing that vanished and what the base holds instead are named.
        assert event["merge_base"] == first
        task = next(t for t in report["tasks"] if t["task_id"] == task_id)
        assert [v["commit"] for v in task["vanished"]] == [event["commit"]]
        assert task["merged_commit"] != event["commit"]  # landed again: a new merge
    assert "is no longer on main" in resumed.stderr
    # ``council status`` shows which tasks were landed again.
    status = council("status", config, cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert "vanished; landed again" in status.stdout


def test_landings_reset_off_the_base_with_relanding_report_fail_the_run(tmp_path: Path) -> None:
    repo, config, _first, _gate = _local_run(tmp_path, "report")
    resumed = council("resume", config, "--json", cwd=tmp_path, timeout=90)
    assert resumed.returncode == 1, resumed.stderr[-3000:]
    report = json.loads(resumed.stdout)
    assert report["status"] == "failed"
    assert _trailers(repo) == ["t03"]  # nothing landed again
    for task_id in ("t01", "t02"):
        task = next(t for t in report["tasks"] if t["task_id"] == task_id)
        assert task["status"] == "failed" and task["outcome"] == "landing_vanished"
        (gone,) = task["vanished"]
        assert gone["action"] == "report"
        assert gone["commit"] in task["error"] and gone["base"] in task["error"]
    assert sorted(e["task_id"] for e in _events(repo, "merge.vanished")) == ["t01", "t02"]


def test_relanding_must_be_auto_or_report(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=True)
    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.format(repo=repo, gate=tmp_path, relanding="sometimes")
        + f"  - {json.dumps(_task('t01'))}\n"
    )
    checked = council("config", "validate", config, cwd=tmp_path)
    assert checked.returncode != 0
    assert "landing.relanding" in checked.stdout + checked.stderr


# -- team mode: the remote's base reset behind two landings mid-run ------------------------


def _team_run(tmp_path: Path, pg_dsn: str, relanding: str) -> tuple[Any, str, int, dict[str, Any]]:
    """One workstation of a team runs four tasks (t03 and t04 wait for a gate); once t01 and
    t02 landed, a person resets the remote's main behind both, then opens the gate. The
    team, the first commit, the run's exit code and its report."""
    from tests.support.team_helpers import Team

    team = Team(tmp_path, pg_dsn)
    first = git(team.remote, "rev-parse", "main")
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "go"
    tasks = [_task("t01"), _task("t02"), _task("t03", gate), _task("t04", gate)]
    config = team.workstation("a", tasks, sessions=4, readable=gates)
    config.write_text(f"landing: {{relanding: {relanding}}}\n{config.read_text()}")
    try:
        team.start("a")
        wait_for(lambda: sorted(team.landed_tasks()) == ["t01", "t02"], "two landings", 60)
        git(team.remote, "update-ref", "refs/heads/main", first)  # a force-push, in effect
        gate.touch()
        code, report, err = team.finish("a", timeout=90)
    finally:
        team.stop_all()
    assert report, err[-3000:]
    return team, first, code, report


@pytest.mark.postgres
def test_team_remote_reset_behind_two_landings_lands_them_again(
    pg_dsn: str, tmp_path: Path
) -> None:
    team, first, code, report = _team_run(tmp_path, pg_dsn, "auto")
    assert code == 0, report
    assert report["totals"]["done"] == 4
    # Each task's edit is on the remote's main exactly once.
    assert sorted(team.landed_tasks()) == ["t01", "t02", "t03", "t04"]
    assert team.base_files() == {f"tasks/t0{n}.txt": f"done t0{n}" for n in range(1, 5)}
    vanished = {e["task_id"]: e for e in team.events("merge.vanished")}
    assert sorted(vanished) == ["t01", "t02"]
    for task_id, event in vanished.items():
        assert event["action"] == "reland"
        assert event["merge_base"] == first
        task = next(t for t in report["tasks"] if t["task_id"] == task_id)
        assert [v["commit"] for v in task["vanished"]] == [event["commit"]]
    status = team.council("status", str(tmp_path / "a.yaml"))
    assert "vanished; landed again" in status.stdout, status.stdout + status.stderr


@pytest.mark.postgres
def test_team_remote_reset_with_relanding_report_exits_non_zero(
    pg_dsn: str, tmp_path: Path
) -> None:
    team, _first, code, report = _team_run(tmp_path, pg_dsn, "report")
    assert code == 1
    assert sorted(team.landed_tasks()) == ["t03", "t04"]
    for task_id in ("t01", "t02"):
        task = next(t for t in report["tasks"] if t["task_id"] == task_id)
        assert task["status"] == "failed" and task["outcome"] == "landing_vanished"
        (gone,) = task["vanished"]
        assert gone["commit"] in task["error"]
        assert gone["replaced_by"] or gone["base"] in task["error"]
    assert sorted(e["task_id"] for e in team.events("merge.vanished")) == ["t01", "t02"]
