"""What the summary says after a run, in words that match what happened (issue 48): a run
stopped (Ctrl-C, a signal) once its last task had landed is not told to resume 0 tasks."""

from __future__ import annotations

import json
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import typer

from orchestrator.cli.status.summary import finish, status_text
from orchestrator.models import TaskStatus
from orchestrator.run.reports.report import RunReport, TaskReport
from tests.support.council_process import council
from tests.support.one_task import write
from tests.support.scheduler_helpers import new_repo


def test_a_run_stopped_after_its_last_landing_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    config = write(tmp_path / "run.yaml", new_repo(tmp_path), "only")
    ran = council(["run", str(config), "--json"], tmp_path)
    assert ran.returncode == 0, ran.stderr[-2000:]
    # The same run as a stop right after its last landing leaves it: interrupted, all done.
    data = json.loads(ran.stdout)
    stopped = RunReport.model_validate({**data, "status": "interrupted"})
    with pytest.raises(typer.Exit):
        finish(stopped, as_json=True, config=config)
    said = capsys.readouterr().err
    assert "stopped after every task was done (1 of 1)" in said, said
    assert "not done" not in said and "council resume" not in said

    # One task not done: it says how many, and how to go on.
    left = {**data, "status": "interrupted"}
    left["tasks"] = [{**left["tasks"][0], "status": "queued"}]
    left["totals"] = {**left["totals"], "done": 0, "pending": 1}
    with pytest.raises(typer.Exit):
        finish(RunReport.model_validate(left), as_json=True, config=config)
    said = capsys.readouterr().err
    assert "stopped with 1 of 1 task(s) not done; continue with" in said, said


def test_a_queued_task_stopped_part_way_shows_the_phases_it_goes_on_from() -> None:
    """An interrupted run's task that had built and been reviewed read ``queued`` beside
    ``attempts 0``, as if nothing had happened: it names the phases done."""
    task = TaskReport(
        task_id="t1",
        status=TaskStatus.QUEUED,
        phases={"plan": "completed", "build": "completed", "review": "completed"},
    )
    assert status_text(task) == "queued (plan, build, review done)"
    fresh = TaskReport(task_id="t2", status=TaskStatus.QUEUED, phases={"plan": "pending"})
    assert status_text(fresh) == "queued"


def test_a_resumed_tasks_time_does_not_count_the_pause(tmp_path: Path) -> None:
    """A task held by a spent budget, its run ended, raised and resumed after a pause: its
    time is its work, not the pause (it counted the pause between the stop and the resume)."""
    config = write(
        tmp_path / "run.yaml", new_repo(tmp_path), "only", budgets={"run": {"tokens": 1}}
    )
    held = council(["run", str(config), "--json"], tmp_path)
    assert held.returncode == 1, held.stderr[-2000:]
    [before] = json.loads(held.stdout)["tasks"]
    write(config, tmp_path / "repo", "only", budgets={"run": {"tokens": 100_000_000}})
    pause = 3.0
    time.sleep(pause)  # the pause itself, not a wait for something to happen
    resumed = council(["resume", str(config), "--json"], tmp_path)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    [after] = json.loads(resumed.stdout)["tasks"]
    assert after["status"] == "done"
    assert before["started_at"] is not None  # its first call began, and the budget stopped it
    first = datetime.fromisoformat(before["started_at"])
    assert datetime.fromisoformat(after["started_at"]) - first >= timedelta(seconds=pause)
    finished = datetime.fromisoformat(after["finished_at"])
    assert after["duration_seconds"] <= (finished - first).total_seconds() - pause
