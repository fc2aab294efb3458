"""The offline demo (configs/demo.yaml) runs end to end on a fresh sample repository."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

from tests.support.timing import patience

DEMO = Path(__file__).resolve().parents[2] / "configs" / "demo.yaml"


def council(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "orchestrator.cli.app", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=patience(240),
    )


def test_the_demo_runs_every_task_to_the_base(tmp_path: Path) -> None:
    configs = tmp_path / "configs"
    configs.mkdir()
    shutil.copy(DEMO, configs / "demo.yaml")

    done = council("run", "configs/demo.yaml", "--json", cwd=tmp_path)

    assert done.returncode == 0, done.stderr[-2000:]
    report = json.loads(done.stdout)
    statuses = {t["task_id"]: t["status"] for t in report["tasks"]}
    assert len(statuses) >= 6 and set(statuses.values()) == {"done"}
    repo = tmp_path / ".council-demo" / "repo"
    log = subprocess.run(
        ["git", "-C", str(repo), "log", "--first-parent", "--format=%B", "main"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    for task_id in statuses:
        assert log.count(f"Council-Task: {task_id}\n") == 1
    tests = subprocess.run(
        [sys.executable, "-m", "unittest", "discover", "-s", "tests"], cwd=repo, capture_output=True
    )
    assert tests.returncode == 0
    events = [
        json.loads(line) for line in (repo / ".council" / "events.jsonl").read_text().splitlines()
    ]
    kinds = [e["type"] for e in events]
    assert "merge.resolve_round" in kinds  # the README conflict, answered without loss
    assert "phase.sent_back" in kinds  # the review round of write-tests
    # add-slugify declares the file add-word-count owns: it starts only once that one landed.
    order = [(e["type"], e["data"].get("task_id")) for e in events]
    assert order.index(("task.dispatched", "add-slugify")) > order.index(
        ("merge.completed", "add-word-count")
    )

    again = council("run", "configs/demo.yaml", "--json", cwd=tmp_path)
    assert again.returncode == 0
    assert {t["status"] for t in json.loads(again.stdout)["tasks"]} == {"done"}
