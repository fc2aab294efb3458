"""Every hold is visible from outside a real ``council run``: a task a configured quota holds
shows ``held`` and ``waiting`` with the reason and the reset in ``council status`` (``--json``
and the table) read by another process while the run waits, on the file store and on a team's
PostgreSQL store; ``call.held`` is said once for the hold, in the event log and the piped
lines; the hold clears when the call starts. Money in ``status`` shows a tiny budget non-zero.
"""

from __future__ import annotations

import json
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import tests.spend.test_budgets_run as budgets_run
from orchestrator.money import dollars
from tests.support.cli_process_helpers import COUNCIL, ENV, events, reap, wait_for

QUOTA = "rate_limits.quotas.cli is used up until "


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> budgets_run.Run:
    dsn = None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))
    return budgets_run.Run(tmp_path, dsn)


def started(run: budgets_run.Run, config: Path) -> subprocess.Popen[str]:
    """``council run CONFIG --json`` in the background, its lines piped (not a terminal)."""
    return subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=run.root,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=run.team.env() if run.team is not None else ENV,
    )


def status_json(run: budgets_run.Run, config: Path) -> dict[str, Any]:
    done = run.council("status", str(config), "--json")
    assert done.returncode == 0, done.stderr
    report: dict[str, Any] = json.loads(done.stdout)
    return report


def calls_held(run: budgets_run.Run) -> list[dict[str, Any]]:
    """The run's ``call.held`` events' data: from the event log, or the team's database."""
    if run.team is None:
        return [e["data"] for e in events(run.repo) if e["type"] == "call.held"]
    return [{k: v for k, v in e.items() if k != "type"} for e in run.team.events("call.held")]


def test_a_quota_hold_shows_in_status_from_another_process_and_clears_when_the_call_starts(
    run: budgets_run.Run,
) -> None:
    config = run.write(
        budgets_run.one_phase_tasks(),
        workflow={"phases": [{"name": "build"}]},
        capacity={"sessions": 2},
        rate_limits={"quotas": {"cli": {"calls": 1, "per": "12s"}}},
    )
    launched = datetime.now(UTC)
    process = started(run, config)
    try:
        found: dict[str, Any] = {}

        def held_in_status() -> bool:
            assert process.poll() is None, "the run ended before status saw the hold"
            look = run.council("status", str(config), "--json")
            if look.returncode == 2 and "no run has been recorded" in look.stderr:
                return False  # the run has not written its session yet
            assert look.returncode == 0, look.stderr
            held = [t for t in json.loads(look.stdout)["tasks"] if t.get("held")]
            if held:
                found.update(held[0])
            return bool(held)

        wait_for(held_in_status, "a task held by the quota in `council status --json`")
        assert found["status"] == "queued"
        assert found["held"].startswith(QUOTA) and found["waiting"] == found["held"]
        until = datetime.fromisoformat(found["held_until"])
        assert until > launched  # the window's end: the first call's start and 12 s
        assert found["held"].endswith(until.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC"))
        table = run.council("status", str(config))
        assert table.returncode == 0, table.stderr
        assert QUOTA in table.stdout  # the table's status column and the held line
        out, err = process.communicate(timeout=120)
    finally:
        reap(process)
    assert process.returncode == 0, out[-3000:] + err[-3000:]
    report = json.loads(out)
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {"one": "done", "two": "done"}
    assert all(t["held"] is None and t["held_until"] is None for t in report["tasks"])
    after = status_json(run, config)  # the hold cleared in the records once its call started
    assert all(t["held"] is None and t["waiting"] is None for t in after["tasks"])
    held = [(data["task_id"], data) for data in calls_held(run)]
    assert len(held) == 1, held  # once for the hold, not once per tick
    task, data = held[0]
    assert data["kind"] == "quota" and data["reason"] == found["held"]
    assert datetime.fromisoformat(data["until"]) == until
    assert f"{task}: build on cli held: {QUOTA}" in err  # the piped lines say it


def test_a_tiny_budget_shows_its_amounts_non_zero_in_status(tmp_path: Path) -> None:
    run = budgets_run.Run(tmp_path, None)
    one = budgets_run.one_phase_tasks()[:1]
    config = run.write(
        one, workflow={"phases": [{"name": "build"}]}, budgets={"run": {"usd": 0.0002}}
    )
    done = run.council("run", str(config), "--json")
    # The one call passes the budget while it runs: the meter stops it (held on the budget,
    # exit 1), unless it ended before the stop reached it (then it landed, exit 0).
    assert done.returncode in (0, 1), done.stdout[-3000:] + done.stderr[-3000:]
    [task] = json.loads(done.stdout)["tasks"]
    if done.returncode == 1:
        assert task["status"] == "queued" and task["held"].startswith("budget: "), task
    else:
        assert task["status"] == "done", task
    spend = json.loads(done.stdout)["spend"]
    spent = spend["usd"]
    assert 0 < spent < 1  # the scripted CLI's cost, from its tokens
    table = run.council("status", str(config))
    assert table.returncode == 0, table.stderr
    assert f"spent {dollars(spent)} in 1 CLI calls" in table.stdout
    assert f"run budget {dollars(spent)} of $0.0002 (" in table.stdout
    assert "$0.00 " not in table.stdout and "of $0.00 " not in table.stdout


def test_a_budget_hold_is_kept_on_the_task_and_said_once(run: budgets_run.Run) -> None:
    config = run.write(
        budgets_run.one_phase_tasks(),
        workflow={"phases": [{"name": "build"}]},
        budgets={"run": {"tokens": 1}},
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    tasks = {t["task_id"]: t for t in json.loads(done.stdout)["tasks"]}
    one = tasks["one"]
    # The first call passes the one-token budget while it runs: the meter stops it (held,
    # like the second), unless it ended before the stop reached it (then it landed).
    if one["status"] == "done":
        assert one["held"] is None
    else:
        assert one["status"] == "queued" and one["held"].startswith("budget: ")
    two = tasks["two"]
    assert two["status"] == "queued" and two["held_until"] is None  # until raised
    assert two["held"].startswith("budget: the run's budget (1 tokens, budgets.run) is spent")
    assert two["waiting"] == two["held"]
    looked = status_json(run, config)  # another process, from the records
    assert [t["held"] for t in looked["tasks"] if t["task_id"] == "two"] == [two["held"]]
    held = calls_held(run)
    assert ("two", "budget", None) in [(h["task_id"], h["kind"], h["until"]) for h in held]
    assert all(h["kind"] == "budget" for h in held)
    assert "two: build on cli held: the run's budget (1 tokens" in done.stderr
