"""Budgets and quota admission in a real ``council run`` (the scripted CLI reports its tokens and
cost as claude does), on the file store and on a team's PostgreSQL store.

A budget of one token is spent by the first call, whatever its size: the runs below stop
starting calls at a known point without depending on how many tokens a prompt has. That first
call is itself stopped once its streamed usage passes the budget (``spend.meter``): the
scripted CLI says its result as it is stopped (recorded as it said it, ``cli``), and the call
runs again once the budget is raised.
"""

from __future__ import annotations

import json
import re
import subprocess
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_process_helpers import ENV, events
from tests.support.council_process import council
from tests.support.forge_helpers import shown
from tests.support.issue_loop import issue_loop
from tests.support.scheduler_helpers import new_repo
from tests.support.team_helpers import Team

SCRIPTED = {"type": "scripted", "options": {"delay": 0}}


def two_tasks() -> list[dict[str, Any]]:
    def one(name: str) -> dict[str, Any]:
        build = f"WRITE {name}.txt {name}"
        return {
            "id": name,
            "prompt": f"Write {name}.txt.",
            "files": [f"{name}.txt"],
            "metadata": {"phase_instructions": {"plan": f"SAY FILES: {name}.txt", "build": build}},
        }

    return [one("one"), one("two")]


def one_phase_tasks() -> list[dict[str, Any]]:
    """``one`` and ``two``, each a build that writes its own file."""
    return [
        {
            "id": name,
            "prompt": f"Write {name}.txt.",
            "metadata": {"phase_instructions": {"build": f"WRITE {name}.txt {name}"}},
        }
        for name in ("one", "two")
    ]


class Run:
    """A run config on the file store, or on a team's PostgreSQL (one workstation)."""

    def __init__(self, root: Path, dsn: str | None) -> None:
        self.root = root
        self.team = Team(root, dsn) if dsn is not None else None
        self.config = root / "run.yaml"

    def write(self, tasks: list[dict[str, Any]], **sections: Any) -> Path:
        data: dict[str, Any] = {
            "adapters": {"cli": SCRIPTED},
            "default_adapter": "cli",
            "capacity": {"sessions": 1},
            "workflow": {"phases": [{"name": "plan"}, {"name": "build"}]},
            "retry": {"max_retries": 1, "backoff_initial": 0.05, "backoff_max": 0.2},
            "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "10m"},
            **sections,
            "tasks": tasks,
        }
        if self.team is None:
            if not (self.root / "repo").exists():
                new_repo(self.root)
            data["repo"] = str(self.root / "repo")
        else:
            if not (self.root / "a").exists():
                self.team.workstation("a", [])
            data["repo"] = str(self.root / "a")
            data["state"] = {"backend": "postgresql"}
        self.config.write_text(json.dumps(data))
        return self.config

    @property
    def repo(self) -> Path:
        return self.root / ("repo" if self.team is None else "a")

    def council(self, *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = self.team.env() if self.team is not None else ENV
        return council(list(args), self.root, timeout=timeout, env=env)

    def cost(self) -> dict[str, Any]:
        done = self.council("cost", str(self.config), "--json")
        assert done.returncode == 0, done.stderr
        report: dict[str, Any] = json.loads(done.stdout)
        return report


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def run(request: pytest.FixtureRequest, tmp_path: Path) -> Run:
    dsn = None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))
    return Run(tmp_path, dsn)


def calls_by_task_and_phase(run: Run) -> dict[tuple[str, str], int]:
    """(task or council candidate, phase) -> how many CLI calls the run's ledger records."""
    done = run.council("cost", str(run.config), "--json", "--by", "phase")
    assert done.returncode == 0, done.stderr
    found: dict[tuple[str, str], int] = {}
    for call in json.loads(done.stdout)["calls"]:
        key = (call["candidate"] or call["task"], call["phase"])
        found[key] = found.get(key, 0) + 1
    return found


def resumed_where_it_stood(run: Run, config: Path) -> None:
    """``council resume`` lands both tasks, and every phase ran once in all but a call the
    budget stopped while it ran (one's plan, when the stop caught it before it ended), which
    ran again: what ended before the hold was not made again."""
    resumed = run.council("resume", str(config), "--json")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert {t["status"] for t in json.loads(resumed.stdout)["tasks"]} == {"done"}
    stopped = [c for c in run.cost()["calls"] if c["outcome"] == "cancelled"]
    assert [(c["task"], c["phase"]) for c in stopped] in ([], [("one", "plan")])
    assert calls_by_task_and_phase(run) == {
        ("one", "plan"): 1 + len(stopped),
        ("one", "build"): 1,
        ("two", "plan"): 1,
        ("two", "build"): 1,
    }


def test_a_spent_run_budget_ends_the_run_held_and_a_raise_goes_on_where_it_stood(
    run: Run,
) -> None:
    config = run.write(two_tasks(), budgets={"run": {"tokens": 1}})
    first = run.council("run", str(config), "--json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    report = json.loads(first.stdout)
    assert report["status"] == "interrupted"
    statuses = {t["task_id"]: t["status"] for t in report["tasks"]}
    assert statuses == {"one": "queued", "two": "queued"}  # nothing failed, nothing counted
    assert all(
        t["waiting"].startswith("budget: the run's budget (1 tokens") for t in report["tasks"]
    )
    assert all(t["attempts"] == 0 for t in report["tasks"])  # a hold is no attempt
    assert report["spend"]["calls"] == 1 and report["spend"]["budgets"][0]["scope"] == "run"
    if run.team is None:  # a team's events are in its database
        said = [e for e in events(run.repo) if e["type"] == "budget.exceeded"]
        assert [e["data"]["scope"] for e in said] == ["run"]
    status = run.council("status", str(config))
    assert (
        "waiting for a budget: the run's budget (1 tokens, budgets.run) is spent" in status.stdout
    )
    assert calls_by_task_and_phase(run) == {("one", "plan"): 1}

    raised = run.council("budget", "raise", str(config), "run", "--tokens", "100000000")
    assert raised.returncode == 0, raised.stderr
    resumed_where_it_stood(run, config)
    cost = run.cost()
    assert cost["total"]["calls"] in (4, 5) and cost["total"]["usd"] > 0
    assert cost["not_landed_share"] == 0  # every priced call's work landed
    # A stopped call's scripted CLI says its result as it stops: recorded as it said it; on a
    # loaded machine its stop grace may end first, and the one stopped call is recorded at what
    # it streamed (``running``), never at $0 and never more than that one call.
    sources = dict(cost["cost_sources"])
    streamed = {source: n for source, n in sources.items() if source.startswith("running")}
    assert sum(streamed.values()) <= 1, sources
    assert sources.get("cli", 0) + sum(streamed.values()) == cost["total"]["calls"], sources


def test_on_exceed_stop_stops_the_run_and_an_edited_config_resumes_it(run: Run) -> None:
    config = run.write(two_tasks(), budgets={"run": {"tokens": 1}, "on_exceed": "stop"})
    first = run.council("run", str(config), "--json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    report = json.loads(first.stdout)
    assert report["status"] == "interrupted"
    held = report["spend"]["held"].removeprefix("budget: ")  # the task's hold, as it keeps it
    assert held.startswith("the run's budget (1 tokens, budgets.run) is spent")
    if run.team is None:  # a team's events are in its database
        kinds = [e["type"] for e in events(run.repo)]
        assert "budget.exceeded" in kinds and "run.interrupted" in kinds
    text = run.council("status", str(config)).stdout
    assert "waiting for a budget: the run's budget" in text
    # Raised in the config itself this time.
    config = run.write(two_tasks(), budgets={"run": {"tokens": 10**8}, "on_exceed": "stop"})
    resumed_where_it_stood(run, config)


def test_a_best_of_three_counts_every_candidate_and_the_judge_to_its_task_budget(
    run: Run,
) -> None:
    task = {
        "id": "feature",
        "prompt": "Add feature.txt",
        "council": True,
        "adapters": ["alpha", "beta", "gamma"],
        "metadata": {
            "phase_instructions": {"plan": "SAY FILES: feature.txt", "build": "WRITE feature.txt x"}
        },
    }
    sections = {
        "adapters": {name: SCRIPTED for name in ("alpha", "beta", "gamma")},
        "default_adapter": "alpha",
        "capacity": {"sessions": 3},
        "budgets": {"task": {"tokens": 1}},
    }
    config = run.write([task], **sections)
    first = run.council("run", str(config), "--json")
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    calls = calls_by_task_and_phase(run)
    # The plans that started before the first one ended ran; no build started after it.
    assert 1 <= len(calls) <= 3
    assert set(calls) <= {(f"feature.c{k}", "plan") for k in (1, 2, 3)}
    if run.team is None:  # a team's events are in its database
        said = [e["data"] for e in events(run.repo) if e["type"] == "budget.exceeded"]
        assert [(d["scope"], d["task_id"]) for d in said] == [("task:feature", "feature")]

    raised = run.council("budget", "raise", str(config), "task", "--tokens", "100000000")
    assert raised.returncode == 0, raised.stderr
    resumed = run.council("resume", str(config), "--json")
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    calls = calls_by_task_and_phase(run)
    cost = run.cost()
    # The plans the budget stopped while they ran (recorded at what they streamed) ran again.
    stopped = [c["candidate"] for c in cost["calls"] if c["outcome"] == "cancelled"]
    assert len(stopped) <= 3
    for k in (1, 2, 3):
        again = stopped.count(f"feature.c{k}")
        assert calls[(f"feature.c{k}", "plan")] == 1 + again
        assert calls[(f"feature.c{k}", "build")] == 1
    assert calls[("feature", "council")] == 1  # the judge, counted to the council task
    assert [g["key"] for g in cost["groups"]] == ["feature"]
    assert cost["total"]["calls"] == 7 + len(stopped)
    assert 0 < cost["not_landed_share"] < 1  # the two candidates not chosen


def test_a_configured_quota_holds_a_call_until_its_window_has_room(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    config = run.write(
        one_phase_tasks(),
        workflow={"phases": [{"name": "build"}]},
        capacity={"sessions": 2},
        rate_limits={"quotas": {"cli": {"calls": 1, "per": "3s"}}},
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = events(run.repo)
    # Held before it was dispatched, or before its CLI started (both leave the other alone):
    held = [e["data"] for e in seen if e["type"] == "call.held"]
    assert all("rate_limits.quotas.cli is used up" in h["reason"] for h in held)
    assert not [e for e in seen if e["type"] in ("adapter.parked", "task.retry", "task.failed")]
    # The CLIs (the ledger's calls) started a window apart, whatever the phases' records said.
    starts = sorted(datetime.fromisoformat(call["started_at"]) for call in run.cost()["calls"])
    assert len(starts) == 2 and starts[1] - starts[0] >= timedelta(seconds=2.9)


def test_a_rate_limit_one_task_hit_holds_another_tasks_next_call_until_the_reset(
    tmp_path: Path,
) -> None:
    run = Run(tmp_path, None)
    limited = {
        "id": "limited",
        "prompt": "Write limited.txt.",
        "metadata": {
            "phase_instructions": {
                "plan": "SAY FILES: limited.txt",
                "build": "RATE_LIMIT reset=4 times=1\nWRITE limited.txt x",
            }
        },
    }
    other = {
        "id": "other",
        "prompt": "Write other.txt.",
        "metadata": {
            "phase_instructions": {
                "plan": "SLEEP 2\nSAY FILES: other.txt",
                "build": "WRITE other.txt y",
            }
        },
    }
    config = run.write([limited, other], capacity={"sessions": 2})
    done = run.council("run", str(config), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    seen = events(run.repo)
    parked = [e["data"] for e in seen if e["type"] == "adapter.parked"]
    assert [p["task_id"] for p in parked] == ["limited"]
    held = [e["data"] for e in seen if e["type"] == "call.held"]
    assert [(h["task_id"], h["phase"]) for h in held][:1] == [("other", "build")]
    # The park, or the CLI's own report of its limit (heard as its call closed), until then:
    assert re.match(
        r"cli('s limit was reached| is parked on a rate limit) until ", held[0]["reason"]
    )
    until = datetime.fromisoformat(parked[0]["until"])
    builds = [  # other's build CLI, as the ledger has it: one, after the reset
        datetime.fromisoformat(call["started_at"])
        for call in run.cost()["calls"]
        if call["task"] == "other" and call["phase"] == "build"
    ]
    assert len(builds) == 1 and builds[0] >= until - timedelta(seconds=0.1)
    report = json.loads(done.stdout)
    assert {t["task_id"]: t["attempts"] for t in report["tasks"]}["other"] == 1


def test_ask_pauses_and_asks_on_the_issue_whether_to_go_on(tmp_path: Path) -> None:
    token = "ghp_budgetAskToken0123456789abcdefghij"
    with issue_loop(tmp_path, owner="acme", name="widgets", token=token) as (gh, config):
        text = config.read_text()
        config.write_text(text + "budgets: {run: {tokens: 1}, on_exceed: ask}\n")
        numbers = [
            gh.create_issue(f"Add {name}", body=f"WRITE {name}.txt {name}\n", labels=["council"])
            for name in ("one", "two")
        ]
        done = council(
            ["run", str(config), "--json"], config.parent, env={**ENV, "GH_TOKEN": token}
        )
        assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
        report = json.loads(done.stdout)
        assert report["status"] == "interrupted"
        asked = [
            shown(comment.body)
            for number in numbers
            for comment in gh.site.issues[number].comments
            if comment.body.startswith("CLI Council paused task")
        ]
        assert len(asked) == 1, asked  # once per spent budget, on the task that found it
        assert "the run's budget (1 tokens, budgets.run) is spent" in asked[0]
        assert "`council budget raise <config> run --usd <limit>`" in asked[0]
        assert token not in asked[0]


def test_an_adapters_budget_per_day_counts_every_run_of_the_day(run: Run) -> None:
    budgets = {"adapters": {"cli": {"tokens": 1, "per": "day"}}}
    # Its usage streamed a step a second: the first step passes the budget while it runs.
    spend = "SPEND 0 50 times=4 every=1\nWRITE one.txt one"
    one = {
        "id": "one",
        "prompt": "Write one.txt.",
        "metadata": {"phase_instructions": {"build": spend}},
    }
    config = run.write([one], workflow={"phases": [{"name": "build"}]}, budgets=budgets)
    first = run.council("run", str(config), "--json")
    # Its one call passed the budget while it ran: stopped, held.
    assert first.returncode == 1, first.stdout[-3000:] + first.stderr[-3000:]
    assert run.cost()["total"]["calls"] == 1
    # A second run the same day: its adapter's day is spent by the first.
    two = {**one, "id": "two", "metadata": {"phase_instructions": {"build": "WRITE two.txt 2"}}}
    config = run.write([two], workflow={"phases": [{"name": "build"}]}, budgets=budgets)
    second = run.council("run", str(config), "--json")
    assert second.returncode == 1, second.stdout[-3000:] + second.stderr[-3000:]
    (task,) = json.loads(second.stdout)["tasks"]
    assert task["waiting"].startswith(
        "budget: adapter cli's budget (1 tokens a day, budgets.adapters.cli) is spent"
    )
    assert run.cost()["total"]["calls"] == 0  # this run's: none started


def test_a_spent_adapter_budget_sends_the_next_task_to_its_fallback(tmp_path: Path) -> None:
    run = Run(tmp_path, None)
    config = run.write(
        one_phase_tasks(),
        adapters={"cli": {**SCRIPTED, "fallback": ["alt"]}, "alt": SCRIPTED},
        workflow={"phases": [{"name": "build"}]},
        budgets={"adapters": {"cli": {"tokens": 1}}},
    )
    done = run.council("run", str(config), "--json")
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    calls = [(call["task"], call["adapter"]) for call in run.cost()["calls"]]
    assert calls[0] == ("one", "cli")  # cli's budget spent by one's call
    # The rest on alt: two's, and one's again if the budget stopped its call while it ran.
    assert sorted(calls[1:]) in ([("two", "alt")], [("one", "alt"), ("two", "alt")])


def test_a_hold_in_a_later_phase_on_another_adapter_ends_the_run_held(tmp_path: Path) -> None:
    """The plan runs on ``cli``, the build on ``alt``, whose budget the build's first call
    spends: the task is held in its build, and the run ends ``interrupted`` naming alt's
    budget (it used to judge the hold from the plan's adapter, found room there, and waited
    for ever)."""
    run = Run(tmp_path, None)
    # alt's CLI takes 2 s between its steps: the budget is passed by the running usage of its
    # first step and the call stopped then. With no delay the call could end by itself first
    # on a loaded machine (its work kept, the task done: 3 runs in 16, four copies at once).
    slow = {"type": "scripted", "options": {"delay": 2}}
    config = run.write(
        one_phase_tasks()[:1],
        adapters={"cli": SCRIPTED, "alt": slow},
        workflow={"phases": [{"name": "plan"}, {"name": "build", "adapter": "alt"}]},
        budgets={"adapters": {"alt": {"tokens": 1}}},
    )
    done = run.council("run", str(config), "--json", timeout=60)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads(done.stdout)
    assert report["status"] == "interrupted"
    [task] = report["tasks"]
    assert task["status"] == "queued" and "alt" in task["waiting"], task
    assert ("one", "plan") in calls_by_task_and_phase(run)
