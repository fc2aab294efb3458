"""Parks on a rate limit end: exponential backoff to a cap without a reset time, the CLI's
reset time when it gives one, a budget per task (``max_parks``) and per adapter
(``max_parked_time``) that ends the task ``failed`` / ``rate_limited`` with a clear message;
the park count survives a resume, and ``council status`` says when each park lifts."""

from __future__ import annotations

import itertools
import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from orchestrator.cli.status.summary import status_text as _status
from orchestrator.config.run import RunConfig
from orchestrator.config.sections import RateLimitConfig
from orchestrator.council import Council
from orchestrator.events import Event
from orchestrator.models import SessionStatus, TaskStatus, utcnow
from orchestrator.retry import GiveUp
from orchestrator.run.reports.report import TaskReport
from orchestrator.scheduler.rules.parks import Park, ParkPolicy
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from tests.support.scheduler_helpers import Probe, new_repo, run_config

NOW = datetime(2026, 11, 23, 8, 0, 0, tzinfo=UTC)


def test_parks_without_a_reset_time_back_off_exponentially_to_the_cap() -> None:
    policy = ParkPolicy()  # the defaults: 30 s, doubling, at most 30 min
    assert [policy.backoff(n) for n in range(1, 9)] == [
        30,
        60,
        120,
        240,
        480,
        960,
        1800,
        1800,
    ]
    assert policy.backoff(10_000) == 1800  # no overflow far beyond the cap
    decision = policy.decide(
        adapter="claude", parks=2, since=NOW, reset_at=None, message="429", now=NOW
    )
    assert decision == Park(until=NOW + timedelta(seconds=120), park=3, since=NOW)


def test_a_reset_time_the_cli_gave_is_used_as_it_is() -> None:
    policy = ParkPolicy()
    soon = NOW + timedelta(seconds=5)
    assert policy.decide(
        adapter="claude", parks=4, since=NOW, reset_at=soon, message="", now=NOW
    ) == Park(until=soon, park=5, since=NOW)
    # A reset time already past: the park lifts at once (never before now).
    past = NOW - timedelta(minutes=1)
    decision = policy.decide(
        adapter="claude", parks=0, since=None, reset_at=past, message="", now=NOW
    )
    assert decision == Park(until=NOW, park=1, since=NOW)


def test_the_park_after_max_parks_ends_the_task_naming_adapter_parks_and_time() -> None:
    policy = ParkPolicy(RateLimitConfig(max_parks=3))
    began = NOW - timedelta(minutes=7, seconds=30)
    decision = policy.decide(
        adapter="codex",
        parks=3,
        since=began,
        reset_at=None,
        message="exceeded retry limit, last status: 429",
        now=NOW,
    )
    assert decision == GiveUp(
        "rate limited: codex was still rate limited after 3 parks over 7m30s "
        "(rate_limits.max_parks is 3); last error: exceeded retry limit, last status: 429"
    )


def test_an_adapter_limited_longer_than_max_parked_time_is_given_up_on() -> None:
    policy = ParkPolicy(RateLimitConfig(max_parked_time="6h"))
    began = NOW - timedelta(hours=5, minutes=50)
    # The next park (1 min) still lifts within 6 h of the first one: taken.
    within = policy.decide(
        adapter="gemini", parks=1, since=began, reset_at=None, message="", now=NOW
    )
    assert isinstance(within, Park) and within.since == began
    # A reset time 20 minutes away would lift past the budget: the task ends now.
    late = NOW + timedelta(minutes=20)
    decision = policy.decide(
        adapter="gemini", parks=1, since=began, reset_at=late, message="quota", now=NOW
    )
    assert isinstance(decision, GiveUp)
    assert decision.reason == (
        "rate limited: gemini has been rate limited for 5h50m (since 2026-11-23 02:10:00 UTC, "
        "1 parks of this task); waiting until 2026-11-23 08:20:00 UTC would pass "
        "rate_limits.max_parked_time (6h); last error: quota"
    )


def test_the_rate_limits_section_is_typed_and_in_the_schema(tmp_path: Path) -> None:
    config = RunConfig.model_validate(
        {
            "repo": str(tmp_path),
            "rate_limits": {"backoff_initial": "1m", "backoff_max": "2h", "max_parked_time": "1d"},
            "tasks": [{"id": "t", "prompt": "p"}],
        }
    )
    assert config.rate_limits == RateLimitConfig(
        backoff_initial=60, backoff_max=7200, max_parked_time=86400
    )
    defaults = RateLimitConfig()
    assert (defaults.backoff_initial, defaults.multiplier, defaults.backoff_max) == (30, 2, 1800)
    assert (defaults.max_parks, defaults.max_parked_time) == (10, 6 * 3600)
    with pytest.raises(ValidationError, match="max_park\n  Extra inputs are not permitted"):
        RateLimitConfig.model_validate({"max_park": 3})  # misspelt: refused, not ignored
    with pytest.raises(ValidationError):
        RateLimitConfig.model_validate({"max_parks": 0})
    schema = RunConfig.model_json_schema()
    section = schema["$defs"]["RateLimitConfig"]
    assert section["additionalProperties"] is False
    assert set(section["properties"]) == {
        "backoff_initial",
        "multiplier",
        "backoff_max",
        "max_parks",
        "max_parked_time",
        "hold_at",
        "quotas",
    }


def _limited(message: str = "HTTP 429, retry 1 of 0") -> WorkflowResult:
    return WorkflowResult(
        WorkflowStatus.PARKED, phase="build", message=message, outcome_kind="rate_limited"
    )


def _config(repo: Path, **limits: Any) -> RunConfig:
    rate_limits = {"backoff_initial": 0.05, "multiplier": 2, "backoff_max": 0.2, **limits}
    return run_config(repo, [{"id": "t", "prompt": "p"}], rate_limits=rate_limits)


async def test_a_persistent_rate_limit_backs_off_then_ends_the_task_rate_limited(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)

    async def always_limited(run: TaskRun, call: int) -> WorkflowResult:
        return _limited()

    probe = Probe(behave={"t": always_limited}, pause=0.0)
    events: list[Event] = []
    async with Council(_config(repo, max_parks=4), workflow=probe) as council:
        council.subscribe(events.append)
        report = await council.run()

    task = report.task("t")
    assert task.status == TaskStatus.FAILED and task.outcome == "rate_limited"
    assert task.parks == 4 and task.parked_until is None
    assert re.fullmatch(
        r"rate limited: alpha was still rate limited after 4 parks over [0-9.]+m?s "
        r"\(rate_limits.max_parks is 4\); last error: HTTP 429, retry 1 of 0",
        task.error or "",
    ), task.error
    assert probe.calls["t"] == 5  # four parks, then the fifth rate limit ends it
    parked = [e.data for e in events if e.type == "adapter.parked"]
    assert [p["park"] for p in parked] == [1, 2, 3, 4]
    assert all(p["adapter"] == "alpha" and p["max_parks"] == 4 for p in parked)
    # Each park lasts longer than the one before, up to the cap: 0.05, 0.1, 0.2, 0.2 s.
    starts = [s.at for s in probe.starts]
    gaps = [later - earlier for earlier, later in itertools.pairwise(starts)]
    assert gaps[0] >= 0.05 and gaps[1] >= 0.1 and gaps[2] >= 0.2 and gaps[3] >= 0.2, gaps
    failed = [e.data for e in events if e.type == "task.failed"]
    assert failed == [{"task_id": "t", "error": task.error, "outcome": "rate_limited"}]
    assert report.exit_code == 1


async def test_the_park_count_survives_a_resume(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = _config(repo, max_parks=3, backoff_initial=0.3, backoff_max=0.3)
    running: list[Council] = []

    async def always_limited(run: TaskRun, call: int) -> WorkflowResult:
        return _limited()

    def stop_after_the_second_park(event: Event) -> None:
        if event.type == "adapter.parked" and event.data["park"] == 2:
            running[0].stop()

    first = Probe(behave={"t": always_limited}, pause=0.0)
    async with Council(config, workflow=first) as council:
        running.append(council)
        council.subscribe(stop_after_the_second_park)
        stopped = await council.run()
    assert stopped.status == SessionStatus.INTERRUPTED
    assert first.calls["t"] == 2
    assert stopped.task("t").status == TaskStatus.PARKED and stopped.task("t").parks == 2

    second = Probe(behave={"t": always_limited}, pause=0.0)
    async with Council(config, workflow=second) as council:
        report = await council.resume(stopped.session_id)

    task = report.task("t")
    # One more park (the third), then the budget of 3 ends it: counted across both runs.
    assert second.calls["t"] == 2
    assert task.status == TaskStatus.FAILED and task.outcome == "rate_limited" and task.parks == 3
    assert "after 3 parks" in (task.error or "")


async def test_status_shows_when_each_park_lifts(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = _config(repo, backoff_initial="1h", backoff_max="1h")
    running: list[Council] = []

    async def limited_once(run: TaskRun, call: int) -> WorkflowResult:
        return _limited("Request rejected (429)")

    def stop_when_parked(event: Event) -> None:
        if event.type == "adapter.parked":
            running[0].stop()

    probe = Probe(behave={"t": limited_once}, pause=0.0)
    before = utcnow()
    async with Council(config, workflow=probe) as council:
        running.append(council)
        council.subscribe(stop_when_parked)
        report = await council.run()

    task = report.task("t")
    assert task.status == TaskStatus.PARKED
    assert task.parked_adapter == "alpha" and task.parks == 1
    assert task.parked_until is not None
    assert before + timedelta(hours=1) <= task.parked_until <= utcnow() + timedelta(hours=1)
    shown = json.loads(report.model_dump_json())["tasks"][0]
    assert shown["parked_until"] == task.parked_until.isoformat().replace("+00:00", "Z")
    assert (shown["parked_adapter"], shown["parks"]) == ("alpha", 1)

    clock = task.parked_until.astimezone().strftime("%H:%M:%S")
    assert _status(task) == f"parked until {clock} (alpha, park 1)"
    done = TaskReport(task_id="d", status=TaskStatus.DONE, phases={})
    assert _status(done) == "done"
