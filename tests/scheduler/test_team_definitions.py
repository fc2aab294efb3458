"""One definition per team run (``scheduler.definitions``): what a task's definition is made of,
and, as real processes (``council run`` in clones of one bare remote, one PostgreSQL database),
a workstation whose config differs from the team run's is refused before it writes anything,
``--adopt`` works on the team's definitions, ``--add-tasks`` adds new tasks, and the first
workstation waits for a task another added instead of ending with exit 1."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.config.workflow import PhaseConfig
from orchestrator.scheduler.team.definitions import (
    IGNORED_PHASE_FIELDS,
    IGNORED_TASK_FIELDS,
    PHASE_FIELDS,
    TASK_FIELDS,
    definition,
    differences,
    digest,
)
from tests.support.team_helpers import Team, team_task, wait_for
from tests.support.worktree_helpers import git


def _config(tasks: list[dict[str, Any]], **extra: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "repo": "/tmp/nowhere",
            "adapters": {"cli": {"type": "scripted"}},
            "workflow": {"phases": [{"name": "build"}]},
            "tasks": tasks,
            **extra,
        }
    )


def test_the_fields_a_definition_is_made_of_are_pinned() -> None:
    # A new field of a task or a phase must be put on one side or the other, here and in the
    # module's doc: does it change the work?
    assert set(TaskConfig.model_fields) == TASK_FIELDS | IGNORED_TASK_FIELDS
    assert set(PhaseConfig.model_fields) == PHASE_FIELDS | IGNORED_PHASE_FIELDS
    assert {"id", "priority", "timeout"} == IGNORED_TASK_FIELDS
    assert {"timeout", "idle_timeout", "options"} == IGNORED_PHASE_FIELDS
    base = team_task(1)
    config = _config([base])
    shape = definition(config, config.tasks[0])
    assert set(shape) == {
        "prompt",
        "phases",
        "review_rounds",
        "verify",
        "files",
        "depends_on",
        "metadata",
        "council",
    }
    assert shape["phases"] == [
        {"name": "build", "adapters": [["cli", "scripted"]], "model": None, "prompt_template": None}
    ]
    # Landing as a stacked pull request changes where it starts and what it lands on.
    stacked = _config([{**base, "landing": {"pulls": "stacked"}}], landing={"via": "pull_request"})
    assert differences(definition(stacked, stacked.tasks[0]), shape) == ["pulls"]
    # Priority and limits are each workstation's own: same digest.
    calm = _config([{**base, "priority": 7, "timeout": "5m"}])
    assert digest(definition(calm, calm.tasks[0])) == digest(shape)
    # What the CLI is asked, or how, is not: each differs, named by field.
    edited = _config(
        [{**base, "metadata": {"phase_instructions": {"build": "WRITE tasks/t01.txt other"}}}]
    )
    assert differences(definition(edited, edited.tasks[0]), shape) == [
        "metadata.phase_instructions"
    ]
    templated = _config([base], workflow={"phases": [{"name": "build", "prompt_template": "x"}]})
    assert differences(definition(templated, templated.tasks[0]), shape) == [
        "phases.build.prompt_template"
    ]
    checked = _config([base], verify=[["true"]])
    assert differences(definition(checked, checked.tasks[0]), shape) == ["verify"]


# -- as a team runs it ---------------------------------------------------------------------


def _gated(task: dict[str, Any], gate: Path, *, priority: int = 0) -> dict[str, Any]:
    build = task["metadata"]["phase_instructions"]["build"]
    phases = {"build": f"WAIT_FOR {gate} 60\n{build}"}
    return {**task, "priority": priority, "metadata": {"phase_instructions": phases}}


def _store_facts(dsn: str, but: str) -> dict[str, Any]:
    """What a refused join must leave as it was: the sessions (tasks, options, status), every
    task record but ``but`` (held by a workstation renewing its claim), the records' keys, and
    the events that a join or a submission would write."""
    with psycopg.connect(dsn) as conn:
        sessions = conn.execute(
            "SELECT session_id, status, doc->'task_ids', doc->'options' "
            "FROM council.sessions ORDER BY session_id"
        ).fetchall()
        tasks = conn.execute(
            "SELECT task_id, version, doc FROM council.tasks WHERE task_id <> %s ORDER BY task_id",
            (but,),
        ).fetchall()
        keys = conn.execute(
            "SELECT namespace, key FROM council.records ORDER BY namespace, key"
        ).fetchall()
        events = conn.execute(
            "SELECT count(*) FROM council.events WHERE type = ANY(%s)",
            (["run.joined", "run.started", "task.submitted", "task.dispatched"],),
        ).fetchall()
    return {"sessions": sessions, "tasks": tasks, "records": keys, "events": events}


def _at_gate(team: Team, task_id: str) -> bool:
    """``task_id``'s build has started (its CLI now waits at the task's gate)."""
    return any(e.get("task_id") == task_id for e in team.events("phase.started"))


def _holder_pid(team: Team, task_id: str) -> str:
    (claim, *_) = [e for e in team.events("claim.acquired") if e["task_id"] == task_id]
    return str(claim["holder"]).split(":")[1]


@pytest.mark.postgres
def test_a_clone_with_an_edited_task_is_refused_and_adopt_runs_the_teams(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    gate = tmp_path / "gate"
    hold = _gated(team_task(0), gate, priority=10)  # a's one session waits here
    t01 = team_task(1)
    edited = {**t01, "metadata": {"phase_instructions": {"build": "WRITE tasks/t01.txt edited"}}}
    team.workstation("a", [hold, t01], sessions=1, readable=tmp_path)
    team.workstation("b", [hold, edited], sessions=1, readable=tmp_path)
    try:
        team.start("a")
        wait_for(lambda: _at_gate(team, "t00"), "a to hold t00 at the gate", 60)
        before = _store_facts(pg_dsn, but="t00")
        readme = tmp_path / "b" / "README.md"
        readme.write_text("b's own edit\n")  # b's checkout is dirty
        refused = team.council(
            "run", str(tmp_path / "b.yaml"), "--json", "--if-base-dirty", "detach", timeout=60
        )
        assert refused.returncode == 2, refused.stderr
        # Refused before the detach: b's checkout stays on its branch, its edit in place.
        assert "detached" not in refused.stderr, refused.stderr
        assert git(tmp_path / "b", "symbolic-ref", "-q", "HEAD") == "refs/heads/main"
        assert readme.read_text() == "b's own edit\n"
        git(tmp_path / "b", "checkout", "--", "README.md")
        assert json.loads(refused.stdout)["exit_code"] == 2  # --json: the error as JSON too
        err = refused.stderr
        assert "task 't01' differs from the team's in metadata.phase_instructions" in err, err
        assert "t00" not in err.split("\n", 1)[1], err  # the same task is not named
        assert "--adopt" in err and "nothing was written" in err, err
        assert "Traceback" not in err, err
        assert _store_facts(pg_dsn, but="t00") == before  # nothing written, nothing joined
        team.start("b", "--adopt")
        wait_for(lambda: "t01" in team.landed_tasks(), "b to land t01", 60)
        gate.touch()
        results = {name: team.finish(name, timeout=60) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 2
    assert sorted(team.landed_tasks()) == ["t00", "t01"]
    # b ran t01, and what landed is the team's definition, not b's edit.
    assert _holder_pid(team, "t01") == str(team.processes["b"].pid)
    assert team.base_files()["tasks/t01.txt"] == "done t01"


@pytest.mark.postgres
def test_a_new_task_joins_only_through_add_tasks_and_the_first_workstation_waits_for_it(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    gate_a, gate_b = tmp_path / "gate-a", tmp_path / "gate-b"
    t01 = _gated(team_task(1), gate_a)
    t02 = team_task(2)
    t09 = _gated(team_task(9), gate_b)
    team.workstation("a", [t01, t02], sessions=1, readable=tmp_path)
    team.workstation("b", [t01, t02, t09], sessions=1, readable=tmp_path)
    try:
        team.start("a")
        wait_for(lambda: _at_gate(team, "t01"), "a to hold t01 at its gate", 60)
        refused = team.council("run", str(tmp_path / "b.yaml"), "--json", timeout=60)
        assert refused.returncode == 2, refused.stderr
        err = refused.stderr
        assert "task 't09' is not part of the team run" in err, err
        assert "--add-tasks" in err and "--adopt" not in err, err
        team.start("b", "--add-tasks")
        wait_for(lambda: "t02" in team.landed_tasks(), "b to land t02", 60)
        wait_for(lambda: _at_gate(team, "t09"), "b to hold t09 at its gate", 60)
        gate_a.touch()  # a's own tasks end now, while t09 still runs on b
        wait_for(lambda: "t01" in team.landed_tasks(), "a to land t01", 60)
        # Long enough for many of a's ticks (0.05 s): the old rule ended a's run here, with
        # exit 1 for a task it never knew, still running elsewhere.
        time.sleep(1.0)
        assert team.processes["a"].poll() is None, "a ended while t09 still ran on b"
        gate_b.touch()
        results = {name: team.finish(name, timeout=60) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["tasks"] == 3 and report["totals"]["done"] == 3
        assert {t["task_id"] for t in report["tasks"]} == {"t01", "t02", "t09"}
    assert sorted(team.landed_tasks()) == ["t01", "t02", "t09"]
    assert _holder_pid(team, "t09") == str(team.processes["b"].pid)


@pytest.mark.postgres
def test_a_clone_resuming_the_team_run_with_an_edited_task_is_refused_then_adopts(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    gate = tmp_path / "gate"
    hold = _gated(team_task(0), gate, priority=10)
    t01 = team_task(1)
    edited = {**t01, "metadata": {"phase_instructions": {"build": "WRITE tasks/t01.txt edited"}}}
    team.workstation("a", [hold, t01], sessions=1, heartbeat=0.3, stale=2.0, readable=tmp_path)
    team.workstation("b", [hold, edited], sessions=1, heartbeat=0.3, stale=2.0, readable=tmp_path)
    config = str(tmp_path / "b.yaml")
    try:
        team.start("a")
        wait_for(lambda: _at_gate(team, "t00"), "a to hold t00 at the gate", 60)
        team.signal("a", signal.SIGKILL)  # the only workstation: b resumes its session
        team.finish("a", timeout=30)
        before = _store_facts(pg_dsn, but="")
        readme = tmp_path / "b" / "README.md"
        readme.write_text("b's own edit\n")  # b's checkout is dirty
        refused = team.council("resume", config, "--json", "--if-base-dirty", "detach", timeout=60)
        assert refused.returncode == 2, refused.stderr
        err = refused.stderr
        assert "detached" not in err, err  # refused before the detach
        assert git(tmp_path / "b", "symbolic-ref", "-q", "HEAD") == "refs/heads/main"
        assert readme.read_text() == "b's own edit\n"
        git(tmp_path / "b", "checkout", "--", "README.md")
        assert "task 't01' differs from the team's in metadata.phase_instructions" in err, err
        assert f"`council resume {config} --adopt`" in err, err
        assert _store_facts(pg_dsn, but="") == before  # nothing written
        gate.touch()
        resumed = team.council("resume", config, "--json", "--adopt", timeout=60)
    finally:
        team.stop_all()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert sorted(team.landed_tasks()) == ["t00", "t01"]
    assert team.base_files()["tasks/t01.txt"] == "done t01"  # the team's, not b's edit
