"""A call its orchestrator never closed is closed by the resume from its CLI's log
(``spend.settle``, ``scheduler.settling``): at what the CLI said it spent, else at its forecast,
never at $0; on the file store and on a team's PostgreSQL store.

Each run is a real ``council run`` killed by SIGKILL at a crash point
(``safety.crashpoints``), then a real ``council resume``; the scripted CLI reports its tokens
and cost as claude does.
"""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from adapters.scripted import Scripted
from orchestrator.adapter import AgentEvent, EventKind, Usage
from orchestrator.models import utcnow
from orchestrator.process import procid
from orchestrator.safety.crashpoints import ENV as CRASH_AT
from orchestrator.scheduler.settling import _read
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.spend.settle import CRASHED, FORECAST, closed_from, usage_in_log
from tests.spend.test_budgets_run import Run, one_phase_tasks
from tests.support.council_process import council

ESTIMATE = 5.0  # a forecast far from anything the scripted CLI spends


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    dsn = None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))
    return Run(tmp_path, dsn)


def killed_at(run: Run, point: str, **sections: Any) -> Path:
    """A run of two one-phase tasks, one session, killed at ``point``; its config."""
    # In a team the dead workstation's claim goes back to the queue when its lease lapses
    # (a teammate merely quiet keeps what it holds): a short one, so the resume finishes.
    scheduler = {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "5s"}
    config = run.write(
        one_phase_tasks(),
        workflow={"phases": [{"name": "build"}]},
        budgets={"estimate": {"usd": ESTIMATE}},
        scheduler=scheduler,
        **sections,
    )
    env = dict(run.team.env() if run.team is not None else os.environ)
    env["COUNCIL_DISABLE_PLUGINS"] = "1"
    env[CRASH_AT] = point
    done = council(["run", str(config), "--json"], run.root, env=env)
    assert done.returncode == -signal.SIGKILL, done.stdout[-2000:] + done.stderr[-2000:]
    assert f"crash point {point.partition(':')[0]} reached" in done.stderr
    return config


def calls(run: Run) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = run.cost()["calls"]
    return found


def said_cost(log: Path) -> float:
    """The ``total_cost_usd`` of the result line in a CLI's log."""
    for line in log.read_text().splitlines():
        if line.startswith("stdout| ") and '"type": "result"' in line.replace('":"', '": "'):
            return float(json.loads(line[len("stdout| ") :])["total_cost_usd"])
    raise AssertionError(f"no result line in {log}")


def test_a_call_killed_before_its_close_is_closed_from_its_log_at_what_it_said(
    run: Run,
) -> None:
    config = killed_at(run, "ledger.closing")
    left = [call for call in calls(run) if call["ended_at"] is None]
    assert len(left) == 1, "the killed call's record is open, counted at its forecast"
    assert left[0]["forecast_usd"] == ESTIMATE and left[0]["log"]
    log = run.repo / ".council" / "logs" / left[0]["log"]
    spent = said_cost(log)  # the CLI said it before the orchestrator died
    assert 0 < spent < ESTIMATE

    resumed = run.council("resume", str(config), "--json")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    settled = {call["call"]: call for call in calls(run)}[left[0]["call"]]
    assert settled["ended_at"] is not None
    assert settled["outcome"] == CRASHED
    assert settled["cost_source"] == "cli"
    assert settled["cost_usd"] == pytest.approx(spent)
    assert settled["input_tokens"] > 0 and settled["output_tokens"] > 0
    report = run.cost()
    assert report["cost_sources"].get("open", 0) == 0
    assert report["total"]["usd"] == pytest.approx(
        sum(call["cost_usd"] or 0 for call in report["calls"])
    )


def test_a_call_killed_before_its_log_was_made_is_left_open_at_its_forecast(
    run: Run,
) -> None:
    """Killed as its CLI started: no log, nothing said. The record stays open, counted at
    its forecast (it may have run): a closed record is a CLI that said what it spent."""
    config = killed_at(run, "cli.spawned")
    left = [call for call in calls(run) if call["ended_at"] is None]
    assert len(left) == 1
    resumed = run.council("resume", str(config), "--json")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    kept = {call["call"]: call for call in calls(run)}[left[0]["call"]]
    assert kept["ended_at"] is None and kept["forecast_usd"] == ESTIMATE


def test_only_this_machines_calls_of_a_dead_orchestrator_are_closed(tmp_path: Path) -> None:
    """Another workstation's call (its log is there), or one whose orchestrator runs on, is
    left open: its own orchestrator closes it."""
    parse = Scripted(Scripted.Config()).parse_line
    mine = _entry().model_copy(update={"host": procid.current().host})
    assert _read(tmp_path, mine, parse) is None  # no log: never started, left open
    assert mine.log is not None
    (tmp_path / mine.log).write_text("# header\nstdout| not a figure\n")
    said = _read(tmp_path, mine, parse)  # no such pid: gone; its log says nothing it spent
    assert said is not None and said.usage is None
    elsewhere = mine.model_copy(update={"host": "another-machine"})
    assert _read(tmp_path, elsewhere, parse) is None
    living = mine.model_copy(update={"log": f"t-build-x-{os.getpid()}-1.log"})
    assert _read(tmp_path, living, parse) is None


# -- the arithmetic, on the lines a real adapter reads ------------------------------------------


def _entry() -> LedgerEntry:
    return LedgerEntry(
        call="call-1",
        session_id="s",
        task="t",
        phase="build",
        adapter="cli",
        model="claude-sonnet-4-5",
        started_at=utcnow(),
        forecast_usd=0.1,
        log="t-build-x-999999999-1.log",
    )


def test_the_final_figure_wins_over_what_was_said_on_the_way() -> None:
    parse = Scripted(Scripted.Config()).parse_line
    result = {
        "type": "result",
        "subtype": "success",
        "is_error": False,
        "result": "done",
        "total_cost_usd": 0.6,
        "usage": {"input_tokens": 100, "output_tokens": 20},
    }
    lines = ["# header", f"stdout| {json.dumps(result)}", "stderr| noise"]
    said = usage_in_log(lines, parse)
    assert said.final and said.usage is not None and said.usage.cost_usd == 0.6
    closed = closed_from(_entry(), said, {}, utcnow())
    assert (closed.cost_usd, closed.cost_source, closed.input_tokens) == (0.6, "cli", 100)


def test_tokens_without_a_cost_are_priced_and_the_figures_add_up() -> None:
    def parse(text: str, stream: str) -> list[AgentEvent]:
        tokens = int(text)
        usage = Usage(input_tokens=tokens, output_tokens=tokens)
        return [AgentEvent(kind=EventKind.USAGE, usage=usage)]

    said = usage_in_log(["stdout| 1000", "stdout| 2000"], parse)
    assert said.final and said.usage is not None
    assert (said.usage.input_tokens, said.usage.output_tokens) == (3000, 3000)
    closed = closed_from(_entry(), said, {}, utcnow())
    assert closed.cost_usd is not None and closed.cost_usd > 0
    assert closed.cost_source.startswith("built-in")


def test_steps_said_while_it_ran_count_when_no_final_figure_came() -> None:
    def parse(text: str, stream: str) -> list[AgentEvent]:
        step, tokens = text.split()
        usage = Usage(input_tokens=int(tokens), output_tokens=int(tokens))
        return [AgentEvent(kind=EventKind.RUNNING_USAGE, usage=usage, data={"step": step})]

    # msg-2 said twice (a step's usage said again as it grows): counted once, the last time
    said = usage_in_log(["stdout| msg-1 1000", "stdout| msg-2 500", "stdout| msg-2 2000"], parse)
    assert not said.final and said.usage is not None
    assert (said.usage.input_tokens, said.usage.output_tokens) == (3000, 3000)
    closed = closed_from(_entry(), said, {}, utcnow())
    assert closed.cost_usd is not None and closed.cost_usd > 0
    assert closed.cost_source.startswith("built-in")


def test_a_log_that_says_nothing_closes_at_the_forecast_and_a_parser_bug_costs_nothing() -> None:
    def parse(text: str, stream: str) -> list[AgentEvent]:
        raise ValueError("a plugin's bug")

    said = usage_in_log(["stdout| {}", "stdout| x"], parse)
    assert said.usage is None
    closed = closed_from(_entry(), said, {}, utcnow())
    assert (closed.cost_usd, closed.cost_source, closed.outcome) == (0.1, FORECAST, CRASHED)
