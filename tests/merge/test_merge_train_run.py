"""Merge trains in a real ``council run``, on the file store and on a team's PostgreSQL store
(landing through the shared remote).

The test holds this clone's merge lock (the OS lock every landing takes first) until each
task whose work is ready has asked for its landing (the ``merge.asked`` point, traced), so the
landings that follow travel as one train whatever the machine's speed. Two of the tasks write
the same new file: the second conflicts with the first wherever it lands (in the same train,
or after it) and is built again on the updated base. Then every task must be done and on the
base exactly once, the train visible in the events (its members' landings share one base tip
after), and a run killed in the middle of its train must land each task once on resume.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest

from orchestrator import filelock
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import TRACE_ENV
from tests.support.cli_process_helpers import COUNCIL, ENV, events, wait_for
from tests.support.council_process import council
from tests.support.merge_repo import first_parent_log, git
from tests.support.scheduler_helpers import new_repo
from tests.support.team_helpers import Team
from tests.support.timing import patience

# a and d write files of their own; b and b2 the same new file: whichever of the two runs
# first, the other waits for it to land (a forecast conflict), then conflicts and is built again.


def task(name: str, path: str) -> dict[str, Any]:
    return {
        "id": name,
        "prompt": f"Write {path}.",
        "metadata": {"phase_instructions": {"build": f"WRITE {path} by {name}"}},
    }


TASKS = [task("a", "a.txt"), task("b", "b.txt"), task("b2", "b.txt"), task("d", "d.txt")]


class Run:
    """One workstation's run of ``TASKS``: on the file store, or on a team's PostgreSQL."""

    def __init__(self, root: Path, dsn: str | None) -> None:
        self.root = root
        self.team = Team(root, dsn) if dsn is not None else None
        self.config = root / "run.yaml"
        self.trace = root / "trace.txt"
        if self.team is None:
            self.repo = new_repo(root)
        else:
            self.team.workstation("a", [])
            self.repo = root / "a"
        data: dict[str, Any] = {
            "repo": str(self.repo),
            "adapters": {"cli": {"type": "scripted", "options": {"delay": 0}}},
            "default_adapter": "cli",
            "capacity": {"sessions": 4},
            "workflow": {"phases": [{"name": "build"}]},
            "retry": {"max_retries": 1, "backoff_initial": 0.05, "backoff_max": 0.2},
            "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "10m"},
            "tasks": TASKS,
        }
        if self.team is not None:
            data["state"] = {"backend": "postgresql"}
            # A killed workstation's claims go back to the team's queue only once they lapse
            # (the resume is another workstation to the team): a short lease here.
            data["scheduler"]["stale_threshold"] = "5s"
        self.config.write_text(json.dumps(data))

    def env(self, **more: str) -> dict[str, str]:
        base = self.team.env() if self.team is not None else ENV
        return {**base, TRACE_ENV: str(self.trace), **more}

    def start(self, **env: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*COUNCIL, "run", str(self.config), "--json"],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=self.env(**env),
        )

    def asked(self) -> set[str]:
        """The tasks that have asked for their landing so far."""
        if not self.trace.exists():
            return set()
        lines = self.trace.read_text().splitlines()
        return {line.split("\t")[1] for line in lines if line.startswith("merge.asked\t")}

    def landed(self) -> list[str]:
        """The ``Council-Task`` trailer of each merge on the base of record, oldest first."""
        where = self.team.remote if self.team is not None else self.repo
        fmt = "%(trailers:key=Council-Task,valueonly)"
        return [t for t in reversed(first_parent_log(where, "main", fmt)) if t]

    def show(self, path: str) -> str:
        where = self.team.remote if self.team is not None else self.repo
        return git(where, "show", f"main:{path}")

    def merges(self) -> list[dict[str, Any]]:
        """The ``merge.completed`` events' data, oldest first."""
        if self.team is not None:
            return [e for e in self.team.events("merge.completed")]
        return [e["data"] for e in events(self.repo) if e["type"] == "merge.completed"]


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    dsn = None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))
    return Run(tmp_path, dsn)


def hold_the_merge_lock(run: Run) -> filelock.FileLock:
    """This clone's merge lock, as the run's own landings take it first."""
    locks = run.repo / ".council" / "locks"
    locks.mkdir(parents=True, exist_ok=True)
    held = filelock.try_acquire(locks / "merge.lock")
    assert held is not None
    return held


def finish(process: subprocess.Popen[str], timeout: float = 120) -> tuple[int, str, str]:
    out, err = process.communicate(timeout=patience(timeout))
    return process.returncode, out, err


def three_asked(run: Run) -> bool:
    """a, d, and one of b and b2 wait for their landing (the other waits for that one)."""
    asked = run.asked()
    return {"a", "d"} <= asked and bool({"b", "b2"} & asked)


def test_ready_landings_travel_as_one_train_and_each_task_lands_once(run: Run) -> None:
    held = hold_the_merge_lock(run)
    process = run.start()
    try:
        wait_for(lambda: three_asked(run), "three tasks to ask for their landing", 90)
    finally:
        held.release()
    code, out, err = finish(process)

    assert code == 0, err[-3000:]
    report = json.loads(out)
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(
        ["a", "b", "b2", "d"], "done"
    )
    assert sorted(run.landed()) == ["a", "b", "b2", "d"]  # each exactly once
    first, second = [t for t in run.landed() if t in ("b", "b2")]
    assert run.show("a.txt") == "by a" and run.show("d.txt") == "by d"
    assert run.show("b.txt") == f"by {second}"  # built again on the first one's landing
    # The train: a, d and the first of b and b2 landed together (one base tip after them).
    after = {m["task_id"]: m["base_after"] for m in run.merges()}
    assert after["a"] == after["d"] == after[first]
    assert after[second] != after["a"]


def test_a_run_killed_in_the_middle_of_its_train_lands_each_task_once_on_resume(
    run: Run,
) -> None:
    held = hold_the_merge_lock(run)
    process = run.start(**{CRASH_ENV: "merge.committed"})
    try:
        wait_for(lambda: three_asked(run), "three tasks to ask for their landing", 90)
    finally:
        held.release()
    code, _, err = finish(process)
    assert code == -9, err[-3000:]  # killed with the train's commits built, nothing moved
    assert run.landed() == []

    resumed = council(["resume", str(run.config), "--json"], run.root, timeout=120, env=run.env())

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-3000:]
    statuses = {t["task_id"]: t["status"] for t in json.loads(resumed.stdout)["tasks"]}
    assert statuses == dict.fromkeys(["a", "b", "b2", "d"], "done")
    assert sorted(run.landed()) == ["a", "b", "b2", "d"]
    assert run.show("b.txt") in {"by b", "by b2"}
