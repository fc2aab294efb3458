"""A goal's plan held until it is answered: ``council run -g GOAL --approve`` waits, and
``council approve`` from another process accepts (some tasks dropped) or refuses it; a bad
answer is refused with the config checks' message and nothing changes. Real processes, the
scripted persona planning offline."""

from __future__ import annotations

import json
import signal
from pathlib import Path

from orchestrator.run.goal_hold import plan_path, read_plan
from tests.cli.test_cli_goal import GOAL, TASKS, setup
from tests.support.cli_process_helpers import council, reap, spawn, wait_for
from tests.support.scheduler_helpers import git, merged_tasks

SAVED = "run.goal-add-a-greeting.yaml"


def _held(tmp_path: Path) -> str | None:
    held = read_plan(tmp_path / "repo")
    return None if held is None else held.status


def test_a_plan_accepted_from_another_shell_runs_the_tasks_it_kept(tmp_path: Path) -> None:
    config = setup(tmp_path)
    run = spawn("run", "-g", GOAL, config, "--approve", "--json", cwd=tmp_path)
    try:
        wait_for(lambda: _held(tmp_path) == "pending", "the plan held", 60)
        saved = tmp_path / SAVED
        # Nothing runs while it waits: no session, no branch of a task.
        assert not (tmp_path / "repo" / ".council" / "state").exists()
        assert run.poll() is None

        # Dropping the first task leaves the second depending on nothing: refused, unchanged.
        before = saved.read_bytes()
        bad = council("approve", config, "--drop", TASKS[0], cwd=tmp_path)
        assert bad.returncode == 2
        assert "depends_on" in bad.stderr and TASKS[0] in bad.stderr, bad.stderr
        assert saved.read_bytes() == before and _held(tmp_path) == "pending"
        unknown = council("approve", config, "--drop", "no-such", cwd=tmp_path)
        assert unknown.returncode == 2 and "no such task in the plan" in unknown.stderr

        accepted = council("approve", config, "--drop", TASKS[1], cwd=tmp_path)
        assert accepted.returncode == 0, accepted.stderr
        assert f"accepted the goal plan of {saved}: 1 task(s) run" in accepted.stdout
        out, err = run.communicate(timeout=120)
    finally:
        reap(run)
    assert run.returncode == 0, err
    report = json.loads(out)
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [(TASKS[0], "done")]
    assert merged_tasks(tmp_path / "repo") == [TASKS[0]]
    assert "the plan waits: accept it with council approve" in err
    assert "plan accepted: 1 task(s) run" in err
    # The saved config is the accepted plan, which status and config validate take.
    assert TASKS[1] not in saved.read_text()
    assert council("config", "validate", saved, cwd=tmp_path).returncode == 0
    assert _held(tmp_path) == "accepted"
    # Answered once: a second answer is refused.
    again = council("approve", "--refuse", config, cwd=tmp_path)
    assert again.returncode == 2 and "was accepted already" in again.stderr


def test_a_refused_plan_runs_nothing(tmp_path: Path) -> None:
    config = setup(tmp_path)
    run = spawn("run", "-g", GOAL, config, "--approve", cwd=tmp_path)
    try:
        wait_for(lambda: _held(tmp_path) == "pending", "the plan held", 60)
        refused = council("approve", "--refuse", config, cwd=tmp_path)
        assert refused.returncode == 0, refused.stderr
        assert "refused the goal plan" in refused.stdout
        out, err = run.communicate(timeout=60)
    finally:
        reap(run)
    assert run.returncode == 2, out + err
    assert "the plan was refused: nothing ran" in err
    repo = tmp_path / "repo"
    assert not (repo / ".council" / "state").exists()
    assert "council/" not in git(repo, "for-each-ref", "--format=%(refname)")


def test_a_changed_planned_config_or_a_forged_record_is_not_accepted(tmp_path: Path) -> None:
    config = setup(tmp_path)
    run = spawn("run", "-g", GOAL, config, "--approve", cwd=tmp_path)
    try:
        wait_for(lambda: _held(tmp_path) == "pending", "the plan held", 60)
        saved = tmp_path / SAVED
        saved.write_text(saved.read_text() + "# changed by hand\n")
        changed = council("approve", config, cwd=tmp_path)
        assert changed.returncode == 2
        assert "changed since it was planned: nothing accepted" in changed.stderr
        record = plan_path(tmp_path / "repo")
        data = json.loads(record.read_text())
        data["config"] = str(tmp_path / "run.yaml")  # not a planned config: never rewritten
        record.write_text(json.dumps(data))
        forged = council("approve", config, cwd=tmp_path)
        assert forged.returncode == 2 and "is not a planned config's path" in forged.stderr
        assert "tasks:" not in (tmp_path / "run.yaml").read_text()
    finally:
        reap(run)


def test_approve_needs_a_goal_and_a_held_plan(tmp_path: Path) -> None:
    config = setup(tmp_path)
    alone = council("run", config, "--approve", cwd=tmp_path)
    assert alone.returncode == 2 and "--approve holds a goal's plan" in alone.stderr
    none = council("approve", config, cwd=tmp_path)
    assert none.returncode == 2 and "no goal plan waits to be accepted" in none.stderr


def test_a_ctrl_c_while_waiting_refuses_the_plan(tmp_path: Path) -> None:
    config = setup(tmp_path)
    run = spawn("run", "-g", GOAL, config, "--approve", cwd=tmp_path)
    try:
        wait_for(lambda: _held(tmp_path) == "pending", "the plan held", 60)
        run.send_signal(signal.SIGINT)
        _, err = run.communicate(timeout=60)
    finally:
        reap(run)
    assert run.returncode == 130, err
    assert _held(tmp_path) == "refused"  # an answer given now would run nothing: none taken
    late = council("approve", config, cwd=tmp_path)
    assert late.returncode == 2 and "was refused already" in late.stderr
