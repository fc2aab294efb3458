"""Budgets checked while a CLI call runs (``orchestrator.spend.meter``), on real processes: the
scripted CLI streams its model requests' usage slowly (``SPEND``), as claude's ``assistant``
messages do, and each adapter's running usage is read from a real transcript.

The scripted model is priced by the run config ($15 per million output tokens): a step of
16,667 output tokens costs $0.25, so a call of eight steps streams towards $2.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from adapters.claude_code import ClaudeCodeAdapter
from adapters.codex import CodexAdapter
from adapters.gemini import GeminiAdapter
from adapters.opencode import OpencodeAdapter
from adapters.qwen import QwenAdapter
from orchestrator.adapter import Adapter, EventKind, Usage
from tests.spend.test_budgets_run import Run
from tests.support.adapter_replay import replay
from tests.support.cli_process_helpers import events

STEP_USD = 0.25
PRICES = {"scripted-model": {"input": 0.0, "output": 15.0}}


def spending(name: str, steps: int, every: float) -> dict[str, Any]:
    """A task whose build streams ``steps`` requests of $0.25 each, ``every`` seconds apart."""
    return {
        "id": name,
        "prompt": f"Spend for {name}.",
        "metadata": {
            "phase_instructions": {
                "build": f"SPEND 0 16667 times={steps} every={every}\nWRITE {name}.txt {name}"
            }
        },
    }


def ledger(run: Run) -> list[dict[str, Any]]:
    calls: list[dict[str, Any]] = run.cost()["calls"]
    return calls


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    dsn = None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))
    return Run(tmp_path, dsn)


def test_two_calls_side_by_side_stop_within_one_step_of_a_one_dollar_budget(run: Run) -> None:
    config = run.write(
        [spending("one", 8, 0.4), spending("two", 8, 0.4)],
        capacity={"sessions": 2},
        workflow={"phases": [{"name": "build"}]},
        budgets={"run": {"usd": 1}, "on_exceed": "stop"},
        prices=PRICES,
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["status"] == "interrupted"
    assert {t["status"] for t in report["tasks"]} == {"queued"}  # neither landed nor failed
    calls = ledger(run)
    assert len(calls) == 2 and all(c["ended_at"] is not None for c in calls)
    # Each stopped call is recorded at what it streamed, never $0.
    assert {c["cost_source"] for c in calls} == {"running"}
    assert all(c["cost_usd"] >= STEP_USD and c["output_tokens"] >= 16667 for c in calls)
    assert all(c["outcome"] == "cancelled" for c in calls)
    total = sum(c["cost_usd"] for c in calls)
    assert 1.0 < total <= 1.0 + STEP_USD + 0.01  # not the $4 both would have spent
    if run.team is None:
        said = [e["data"] for e in events(run.repo) if e["type"] == "budget.exceeded"]
    else:  # a team's events are in its database
        said = run.team.events("budget.exceeded")
    assert [d["scope"] for d in said] == ["run"]  # once, for both calls
    assert said[0]["action"] == "stop"


def test_a_budget_passed_while_a_call_runs_holds_its_task_until_raised(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    config = run.write(
        [spending("one", 8, 0.2)],
        workflow={"phases": [{"name": "build"}]},
        budgets={"task": {"usd": 0.6}},
        prices=PRICES,
    )
    first = run.council("run", str(config), "--json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    (task,) = json.loads(first.stdout)["tasks"]
    assert task["status"] == "queued" and task["attempts"] == 0  # a hold, not a failure
    assert task["waiting"].startswith("budget: task one's budget ($0.60, budgets.task) is spent")
    (call,) = ledger(run)
    assert call["cost_source"] == "running" and 0.6 < call["cost_usd"] <= 0.6 + STEP_USD + 0.01

    raised = run.council("budget", "raise", str(config), "task", "--usd", "100")
    assert raised.returncode == 0, raised.stderr
    resumed = run.council("resume", str(config), "--json")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert [t["status"] for t in json.loads(resumed.stdout)["tasks"]] == ["done"]
    calls = ledger(run)
    assert [c["cost_source"] for c in calls] == ["running", "cli"]
    assert calls[1]["cost_usd"] >= 8 * STEP_USD  # the whole call, as the CLI said it


def test_a_call_within_its_budget_runs_to_its_end_untouched(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    config = run.write(
        [spending("one", 3, 0.05)],
        workflow={"phases": [{"name": "build"}]},
        budgets={"run": {"usd": 100}, "on_exceed": "stop"},
        prices=PRICES,
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    (call,) = ledger(run)
    assert call["cost_source"] == "cli" and call["outcome"] == "succeeded"
    assert call["output_tokens"] >= 3 * 16667
    assert not [e for e in events(run.repo) if e["type"] == "budget.exceeded"]


def test_a_call_killed_by_its_timeout_records_what_it_streamed(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    config = run.write(
        [spending("one", 200, 0.1)],  # 20 s of steps: its 3 s timeout stops it
        workflow={"phases": [{"name": "build", "timeout": 3}]},
        retry={"max_retries": 0},
        prices=PRICES,
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    (call,) = ledger(run)
    assert call["outcome"] == "timed_out" and call["cost_source"] == "running"
    steps = call["output_tokens"] // 16667
    assert steps >= 1 and call["cost_usd"] >= steps * STEP_USD - 0.01


def test_a_killed_call_of_an_unpriced_model_counts_its_streamed_tokens(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    task = {"id": "one", "prompt": "Hang.", "metadata": {"phase_instructions": {"build": "HANG"}}}
    config = run.write(
        [task],
        adapters={"cli": {"type": "scripted", "options": {"delay": 0}, "model": "unpriced"}},
        workflow={"phases": [{"name": "build", "timeout": 2}]},
        retry={"max_retries": 0},
        budgets={"run": {"usd": 100}},
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    (call,) = ledger(run)
    # Its opening message streamed its usage before it hung: tokens counted, no price guessed.
    assert call["outcome"] == "timed_out" and call["cost_source"] == "running, none"
    assert call["cost_usd"] is None and call["input_tokens"] > 0


# -- each adapter's running usage, from a real transcript -------------------------------------


def running(adapter: Adapter, cli: str, case: str) -> tuple[list[Usage], list[str], Usage | None]:
    found = replay(adapter, cli, case)
    said = found.of(EventKind.RUNNING_USAGE)
    usages = [e.usage for e in said if e.usage is not None]
    return usages, [str(e.data.get("step", "")) for e in said], found.outcome.usage


def test_claude_says_each_messages_usage_as_it_comes_and_its_result_alone_is_the_calls() -> None:
    usages, steps, outcome = running(ClaudeCodeAdapter(), "claude", "edit_success")
    assert len(usages) == 3 and all(step.startswith("msg_") for step in steps)
    assert usages[0] == Usage(input_tokens=100, output_tokens=1)
    assert outcome is not None and (outcome.input_tokens, outcome.output_tokens) == (300, 60)
    assert outcome.cost_usd is not None  # the result's, running usage not added to it


def test_qwen_says_each_messages_usage_as_it_comes() -> None:
    usages, steps, outcome = running(QwenAdapter(), "qwen", "stream_success")
    assert usages == [Usage(input_tokens=100, output_tokens=20)] * 2 and all(steps)
    assert outcome is not None and (outcome.input_tokens, outcome.output_tokens) == (200, 40)


def test_opencode_says_each_steps_usage_and_its_outcome_sums_the_steps_once() -> None:
    usages, steps, outcome = running(OpencodeAdapter(), "opencode", "stream_success")
    assert len(usages) == 2 and all(step.startswith("msg_") for step in steps)
    assert outcome is not None
    assert outcome.input_tokens == sum(u.input_tokens for u in usages) == 200


def test_codex_and_gemini_say_their_usage_only_at_the_end() -> None:
    for adapter, cli, case in (
        (CodexAdapter(), "codex", "edit_success"),
        (GeminiAdapter(), "gemini", "stream_success"),
    ):
        usages, _, outcome = running(adapter, cli, case)
        assert usages == [] and outcome is not None and outcome.input_tokens > 0
