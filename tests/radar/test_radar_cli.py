"""``council run`` as a real process with the scripted CLI: two tasks rewriting the same
function; the collision radar's ``radar.collision`` is in the run's event log, ``council
status`` (text and ``--json``) marks both tasks while they are live, and ``radar.resolved``
follows once one lands."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.support.cli_process_helpers import council, events, reap, seen, spawn, wait_for
from tests.support.radar_helpers import BASE_MODULE, make_repo
from tests.support.timing import patience


def task(task_id: str, new: str, gate: Path) -> str:
    build = f"WRITE src/mod.py <<EOF\n{BASE_MODULE.replace('y = x + 1', new)}EOF"
    entry: dict[str, Any] = {
        "id": task_id,
        "prompt": "Change alpha.",
        "metadata": {
            "phase_instructions": {
                "build": build,
                "review": f"WAIT_FOR {gate} 60\nSAY VERDICT: approve",
            }
        },
    }
    return f"  - {json.dumps(entry)}\n"


def test_council_run_says_and_status_marks_a_collision(tmp_path: Path) -> None:
    repo = make_repo(tmp_path)
    gate = tmp_path / "reviews-go"
    config = tmp_path / "run.yaml"
    config.write_text(
        f"repo: {repo}\n"
        "adapters:\n  cli: {type: scripted, options: {delay: 0}}\n"
        "default_adapter: cli\n"
        "capacity: {sessions: 2}\n"
        "workflow: {phases: [{name: build}, {name: review}]}\n"
        "scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}\n"
        f"sandbox: {{read: [{tmp_path}]}}\n"
        "radar: {mode: warn, interval: 0.5}\n"
        "tasks:\n" + task("task-a", "y = x + 10", gate) + task("task-b", "y = x + 20", gate)
    )
    run = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: seen(repo, "radar.collision"), "a collision found")
        said = next(e for e in events(repo) if e["type"] == "radar.collision")
        assert said["data"]["paths"] == ["src/mod.py"]
        assert {said["data"]["task_id"], said["data"]["other_task_id"]} == {"task-a", "task-b"}
        # Said once, when first found: by its uncommitted hunks if the timer saw it first,
        # graded a conflict once both builds committed (the record, not a second event).
        assert said["data"]["severity"] in ("hunks", "conflict")
        looks: list[dict[str, Any]] = []

        def graded_a_conflict() -> bool:
            looked = council("status", config, "--json", cwd=tmp_path)
            looks.append(json.loads(looked.stdout))
            return [c["severity"] for c in looks[-1]["collisions"]] == ["conflict"]

        wait_for(graded_a_conflict, "the collision graded a conflict")
        report = looks[-1]
        marks = {t["task_id"]: t["collision"] for t in report["tasks"]}
        assert marks["task-a"] == "collides with task-b on src/mod.py (conflict)"
        assert marks["task-b"] == "collides with task-a on src/mod.py (conflict)"
        (shown,) = report["collisions"]
        assert sorted(shown["tasks"]) == ["task-a", "task-b"]
        assert shown["severity"] == "conflict" and shown["conflict_paths"] == ["src/mod.py"]

        text = council("status", config, cwd=tmp_path).stdout
        assert "! collides with task-b on src/mod.py (conflict)" in text
    finally:
        gate.touch()
        run.communicate(timeout=patience(60))
        reap(run)
    resolved = [e for e in events(repo) if e["type"] == "radar.resolved"]
    assert resolved and resolved[0]["data"]["paths"] == ["src/mod.py"]
    assert json.loads(council("status", config, "--json", cwd=tmp_path).stdout)["collisions"] == []
