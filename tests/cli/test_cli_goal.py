"""Goal mode as a user runs it: ``council run -g GOAL`` and ``council plan GOAL``, a real
process each, the scripted persona planning offline (its ``PLAN`` script), the plan validated
like a hand-written config, sent back once, refused with nothing changed."""

from __future__ import annotations

import json
from pathlib import Path

from tests.support.cli_process_helpers import council
from tests.support.scheduler_helpers import git, merged_tasks, new_repo

CONFIG = """\
repo: repo
adapters:
  fast: {type: scripted, options: {delay: 0}}
default_adapter: fast
capacity: {sessions: 2}
workflow: {phases: [{name: plan}, {name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}
"""

GOAL = "Add a greeting"
TASKS = ["add-a-greeting", "add-a-greeting-checklist"]


def setup(tmp_path: Path, extra: str = "") -> Path:
    new_repo(tmp_path)
    path = tmp_path / "run.yaml"
    path.write_text(CONFIG + extra)
    return path


def repository_state(repo: Path) -> tuple[str, str, bool]:
    """The refs, the checkout's status and whether council wrote its directory there."""
    refs = git(repo, "for-each-ref", "--format=%(refname) %(objectname)")
    return refs, git(repo, "status", "--porcelain", "--ignored"), (repo / ".council").exists()


def test_a_goal_is_planned_shown_saved_and_its_tasks_land_on_main(tmp_path: Path) -> None:
    # The config's own task is set aside: the goal's plan takes its place.
    config = setup(tmp_path, "tasks:\n  - {id: old-task, prompt: WRITE old.txt old}\n")
    done = council("run", "-g", GOAL, str(config), "--json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)  # stdout stays the run's one JSON document
    assert report["status"] == "completed"
    assert [(t["task_id"], t["status"]) for t in report["tasks"]] == [(t, "done") for t in TASKS]
    assert merged_tasks(tmp_path / "repo") == TASKS
    assert git(tmp_path / "repo", "show", "main:goal/add-a-greeting.md").startswith(
        "# Add a greeting"
    )
    # The plan, shown on stderr with --json: by whom, how many rounds, each task.
    assert "plan for the goal, by fast in 1 round: 2 task(s); in place of the 1 of" in done.stderr
    assert "2. add-a-greeting-checklist after add-a-greeting; files" in done.stderr
    saved = tmp_path / "run.goal-add-a-greeting.yaml"
    assert f"saved as {saved}" in done.stderr
    assert "old-task" not in saved.read_text()

    # The saved config is the run's: status (and resume) take it, config validate accepts it.
    status = council("status", str(saved), "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["session_id"] == report["session_id"]
    assert council("config", "validate", str(saved), cwd=tmp_path).returncode == 0


def test_council_plan_prints_a_task_list_config_validate_accepts(tmp_path: Path) -> None:
    config = setup(tmp_path)
    before = repository_state(tmp_path / "repo")
    planned = council("plan", GOAL, str(config), cwd=tmp_path)

    assert planned.returncode == 0, planned.stderr
    assert planned.stdout.startswith("# Planned by fast")
    assert "tasks:\n- id: add-a-greeting\n" in planned.stdout
    assert "fast is planning the goal (round 1 of 2)" in planned.stderr
    whole = tmp_path / "whole.yaml"
    whole.write_text(CONFIG + planned.stdout)
    checked = council("config", "validate", str(whole), cwd=tmp_path)
    assert checked.returncode == 0, checked.stderr
    assert "2 tasks" in checked.stdout
    # Planning changed nothing: no ref, no file, no .council, no saved config.
    assert repository_state(tmp_path / "repo") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "run.yaml", "whole.yaml"]


def test_council_plan_json_is_the_plan_as_data(tmp_path: Path) -> None:
    config = setup(tmp_path)
    planned = council("plan", GOAL, str(config), "--json", cwd=tmp_path)

    assert planned.returncode == 0, planned.stderr
    data = json.loads(planned.stdout)
    assert (data["goal"], data["planner"], data["rounds"]) == (GOAL, "fast", 1)
    assert [task["id"] for task in data["tasks"]] == TASKS
    assert data["tasks"][1]["depends_on"] == ["add-a-greeting"]
    assert data["tasks"][0]["files"] == ["goal/add-a-greeting.md"]


def test_a_plan_that_fails_validation_is_sent_back_and_the_second_is_run(tmp_path: Path) -> None:
    config = setup(tmp_path)
    # A scripted line in the goal: the persona's first plan is invalid (a bad id).
    done = council("run", "-g", f"{GOAL}\nPLAN invalid=1", str(config), "--json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr
    assert "plan sent back to fast with 2 problem(s); round 2 of 2" in done.stderr
    assert "by fast in 2 rounds" in done.stderr
    assert [t["status"] for t in json.loads(done.stdout)["tasks"]] == ["done", "done"]
    assert merged_tasks(tmp_path / "repo") == TASKS


def test_a_planner_that_never_plans_validly_is_refused_and_nothing_changes(
    tmp_path: Path,
) -> None:
    config = setup(tmp_path)
    before = repository_state(tmp_path / "repo")
    refused = council("run", "-g", f"{GOAL}\nPLAN invalid=9", str(config), cwd=tmp_path)

    assert refused.returncode == 2
    assert "no valid task list from fast in 2 round(s); nothing was changed" in refused.stderr
    assert "plan:2: tasks[0].id: id 'First Step' is not a safe id" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert repository_state(tmp_path / "repo") == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["repo", "run.yaml"]

    as_json = council("plan", f"{GOAL}\nPLAN invalid=9", str(config), "--json", cwd=tmp_path)
    assert as_json.returncode == 2
    assert "plan:2: tasks[0].id" in as_json.stderr


def test_a_bad_config_or_planner_is_refused_before_any_cli_plans(tmp_path: Path) -> None:
    config = setup(tmp_path, "capacity: {sessions: 0}\n")
    config.write_text(config.read_text().replace("capacity: {sessions: 2}\n", ""))
    bad = council("plan", GOAL, str(config), cwd=tmp_path)
    assert bad.returncode == 2
    assert f"{config}:8: capacity.sessions" in bad.stderr
    assert "planning" not in bad.stderr

    good = setup(tmp_path / "other")
    unknown = council("plan", GOAL, str(good), "--planner", "nosuch", cwd=tmp_path)
    assert unknown.returncode == 2
    assert "--planner nosuch: no such adapter in the run config (it has: fast)" in unknown.stderr

    empty = council("plan", "  ", str(good), cwd=tmp_path)
    assert empty.returncode == 2
    assert "the goal is empty" in empty.stderr

    missing = council("run", "-g", GOAL, cwd=tmp_path)
    assert missing.returncode == 2
    assert "no run config: name FILE, or write council.yaml here" in missing.stderr


def test_a_goal_dry_run_shows_the_plan_and_the_runs_and_saves_nothing(tmp_path: Path) -> None:
    config = setup(tmp_path)
    (tmp_path / "council.yaml").write_text(config.read_text())  # FILE defaults to it
    shown = council("run", "-g", GOAL, "--dry-run", cwd=tmp_path)

    assert shown.returncode == 0, shown.stderr
    assert "plan for the goal, by fast in 1 round: 2 task(s)" in shown.stdout
    assert "2. add-a-greeting-checklist (priority 0, after add-a-greeting" in shown.stdout
    assert sorted(p.name for p in tmp_path.iterdir()) == ["council.yaml", "repo", "run.yaml"]
    assert merged_tasks(tmp_path / "repo") == []
