"""Spending's parts on their own: prices, budgets, quota windows, the ledger on both backends,
the spend gate, and claude's quota report. The run as a whole: ``test_budgets_run.py``."""

from __future__ import annotations

import random
import statistics
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from adapters._claude_stream import parse_value
from orchestrator.adapter import AgentEvent, EventKind, Usage
from orchestrator.config.budgets import BudgetsConfig, Limit, PriceConfig, QuotaConfig
from orchestrator.config.run import RunConfig
from orchestrator.models import TaskState, TaskStatus
from orchestrator.spend import budgets as rules
from orchestrator.spend.gate import RAISES, CallPlan, SpendGate, SpendHeld
from orchestrator.spend.ledger import Ledger, LedgerEntry, new_call_key
from orchestrator.spend.prices import PRICES_AS_OF, cost_of, find_price
from orchestrator.spend.quota import configured_wait
from orchestrator.spend.tally import Tally
from orchestrator.spend.totals import cost_report
from orchestrator.state import FileStateStore, StateStore

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def entry(**fields: Any) -> LedgerEntry:
    base: dict[str, Any] = {
        "call": new_call_key(),
        "session_id": "s1",
        "task": "t1",
        "phase": "build",
        "adapter": "claude",
        "started_at": NOW,
        "ended_at": NOW,
        "input_tokens": 100,
        "output_tokens": 10,
        "cost_usd": 0.5,
        "cost_source": "cli",
    }
    return LedgerEntry.model_validate({**base, **fields})


# -- prices ---------------------------------------------------------------------------------


def test_a_model_is_priced_by_its_id_its_dated_variant_or_the_config() -> None:
    sonnet = find_price("claude-sonnet-4-5", {})
    assert sonnet is not None and sonnet.source == f"built-in {PRICES_AS_OF}"
    assert find_price("claude-sonnet-4-5-20250929", {}) == sonnet
    assert find_price("anthropic/claude-sonnet-4-5", {}) == sonnet  # opencode's provider/model
    # The longest listed id wins: gpt-5-mini is not gpt-5.
    mini, full = find_price("gpt-5-mini", {}), find_price("gpt-5", {})
    assert mini is not None and full is not None and mini.input < full.input
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000, cache_read_tokens=1_000_000)
    assert cost_of(usage, sonnet) == pytest.approx(3.0 + 15.0 + 0.30)
    own = find_price("Claude-Sonnet-4-5", {"claude-sonnet-4-5": PriceConfig(input=1, output=2)})
    assert own is not None and own.source == "prices.claude-sonnet-4-5"
    assert (own.cache_read, own.cache_write) == (1, 1)  # default: the input's price
    assert find_price("fake-model", {}) is None  # never guessed: "no price"
    assert find_price("claude-sonnet-4-5x", {}) is None  # a prefix is not a match
    assert find_price("claude-opus-4-8", {}) is None  # nor is a later version
    assert find_price(None, {}) is None


# -- budgets --------------------------------------------------------------------------------


def check(
    entries: list[LedgerEntry], scopes: list[rules.Scope], coming: rules.Forecast
) -> rules.Exceeded | None:
    """``budgets.check`` over a plain list, and the same answer from the gate's running sums."""
    plain = rules.check(scopes, coming, lambda scope: rules.spent(entries, scope, "s1", NOW))
    tally = Tally("s1", entries)
    assert rules.check(scopes, coming, lambda scope: tally.spent(scope, NOW)) == plain
    for scope in scopes:
        assert tally.spent(scope, NOW) == rules.spent(entries, scope, "s1", NOW)
    return plain


def test_a_call_fits_only_while_every_scope_has_room_for_its_forecast() -> None:
    budgets = BudgetsConfig(
        run=Limit(usd=2.0), task=Limit(tokens=250), adapters={"claude": Limit(usd=1.2)}
    )
    entries = [entry(), entry(task="t2")]  # $1.00 and 220 tokens so far, 110 on each task
    coming = rules.Forecast(usd=0.1, tokens=100, basis="test")
    scopes = rules.scopes_for(budgets, "t1", "claude")
    assert [s.key for s in scopes] == ["run", "task:t1", "adapter:claude"]
    assert check(entries, scopes, coming) is None
    bigger = rules.Forecast(usd=0.3, tokens=100, basis="test")
    over = check(entries, scopes, bigger)
    assert over is not None and over.scope.key == "adapter:claude"
    assert "adapter claude's budget ($1.20, budgets.adapters.claude) is spent" in over.message()
    more = rules.Forecast(usd=0.0, tokens=150, basis="test")
    over = check(entries, scopes, more)
    assert over is not None and over.scope.key == "task:t1"
    # Another run's calls count only to a budget per day, and only on the same day.
    daily = BudgetsConfig(adapters={"claude": Limit(usd=1.0, per="day")})
    others = [entry(session_id="s0"), entry(session_id="s0", started_at=NOW - timedelta(days=1))]
    held = check(others, rules.scopes_for(daily, "t1", "claude"), rules.Forecast())
    assert held is None  # $0.50 today
    held = check([*others, entry()], rules.scopes_for(daily, "t1", "claude"), rules.Forecast())
    assert held is not None and held.spend.usd == pytest.approx(1.0)


def test_an_open_call_counts_at_its_forecast_and_the_forecast_is_the_median() -> None:
    still = entry(ended_at=None, cost_usd=None, forecast_usd=0.7, forecast_tokens=900)
    assert (still.counted_usd, still.counted_tokens) == (0.7, 900)
    done = [entry(cost_usd=c, input_tokens=t) for c, t in ((0.1, 10), (0.3, 30), (0.9, 90))]
    tally = Tally("s1", [*done, still])
    forecast = tally.forecast("claude", "build", None)
    # The median of the closed calls, recounted here: the open one is left out.
    assert forecast.usd == statistics.median(e.cost_usd or 0 for e in done)
    assert forecast.tokens == statistics.median(e.tokens for e in done)
    assert (forecast.usd, forecast.tokens) == (0.3, 40)
    assert forecast.basis == "median of 3 build calls on claude"
    estimate = tally.forecast("claude", "review", Limit(usd=0.25))
    assert (estimate.usd, estimate.basis) == (0.25, "budgets.estimate")
    assert tally.forecast("codex", "build", None) == rules.Forecast()
    tally.drop(done[1].call)  # an even count: the middle two, halved
    assert tally.forecast("claude", "build", None).usd == pytest.approx(0.5)


def test_a_tally_that_keeps_no_closed_call_sums_them_all_exactly() -> None:
    # Closed calls are counted and forgotten (issue 33): every budget's spend, per run and
    # per day, and the forecast's median are what a tally keeping every call says.
    rng = random.Random(3)
    calls = []
    for _ in range(200):
        call = entry(
            task=f"t{rng.randrange(5)}", adapter=rng.choice(["claude", "codex"]),
            session_id=rng.choice(["s1", "s1", "s0"]), cost_usd=rng.random(),
            input_tokens=rng.randrange(500), started_at=NOW - timedelta(days=rng.randrange(2)),
        )  # fmt: skip
        calls.append(call)
    kept, lean = Tally("s1"), Tally("s1", kept=lambda adapter: False)
    for call in calls:
        opened = call.model_copy(update={"ended_at": None, "forecast_usd": 0.1})
        for tally in (kept, lean):
            tally.put(opened)
            tally.put(call)
    assert lean.entries == {} and len(kept.entries) == len(calls)
    budgets = BudgetsConfig(run=Limit(usd=1), task=Limit(usd=1), adapters={"claude": Limit(usd=1)})
    daily = BudgetsConfig(
        run=Limit(usd=1, per="day"), task=Limit(tokens=1, per="day"),
        adapters={"codex": Limit(usd=1, per="day")},
    )  # fmt: skip
    for limits in (budgets, daily):
        for task in ("t0", "t3"):
            for scope in rules.scopes_for(limits, task, "claude") + rules.scopes_for(
                limits, task, "codex"
            ):
                plain = rules.spent(calls, scope, "s1", NOW)
                for tally in (kept, lean):
                    spent = tally.spent(scope, NOW)
                    assert spent.usd == pytest.approx(plain.usd), scope.key
                    assert spent.tokens == plain.tokens, scope.key
    assert lean.forecast("claude", "build", None) == kept.forecast("claude", "build", None)
    assert (lean.calls, lean.unpriced, lean.tasks) == (kept.calls, kept.unpriced, kept.tasks)
    assert lean.run_total() == kept.run_total()


async def test_the_gate_keeps_no_closed_call_but_those_of_an_adapter_with_a_quota(
    store: StateStore, tmp_path: Path
) -> None:
    config = run_config(tmp_path, rate_limits={"quotas": {"codex": {"calls": 100, "per": "1h"}}})
    gate = SpendGate(store, config, "s1")
    await gate.load()
    for n in range(6):
        adapter = "codex" if n % 3 == 0 else "claude"
        ticket = await gate.open(CallPlan(task=f"t{n}", phase="build", adapter=adapter))
        await gate.close(ticket, usage=Usage(input_tokens=10), outcome="succeeded")
    held = gate._tally.entries.values()
    assert [e.adapter for e in held] == ["codex", "codex"]  # the quota's window reads them
    assert len(await gate.run_entries()) == 6  # the ledger in the store has every call
    assert gate._tally.run_total()[1] == 60 and gate._tally.calls == 6
    fresh = SpendGate(store, config, "s1")  # a resume: the same sums, the same calls kept
    await fresh.load()
    assert fresh._tally.run_total() == gate._tally.run_total()
    assert len(fresh._tally.entries) == 2


def test_a_raise_lays_the_larger_limit_over_the_config() -> None:
    budgets = BudgetsConfig(run=Limit(usd=5), adapters={"claude": Limit(usd=1, per="day")})
    raised = rules.raised(
        budgets, {"run": {"usd": 3}, "task": {"tokens": 10}, "adapters": {"claude": {"usd": 4}}}
    )
    assert raised.run == Limit(usd=5)  # a raise never lowers a limit
    assert raised.task == Limit(tokens=10)
    assert raised.adapters["claude"] == Limit(usd=4, per="day")


def test_bad_budgets_are_refused_at_their_place() -> None:
    base: dict[str, Any] = {"tasks": [{"id": "a", "prompt": "x"}], "adapters": {"claude": {}}}
    with pytest.raises(ValueError, match="give usd, tokens or both"):
        RunConfig.model_validate({**base, "budgets": {"run": {}}})
    with pytest.raises(ValueError, match=r"budgets\.adapters\.codex: unknown adapter 'codex'"):
        RunConfig.model_validate({**base, "budgets": {"adapters": {"codex": {"usd": 1}}}})
    with pytest.raises(ValueError, match="on_exceed"):
        RunConfig.model_validate({**base, "budgets": {"on_exceed": "shrug"}})
    with pytest.raises(ValueError, match=r"rate_limits\.quotas\.codex: unknown adapter"):
        RunConfig.model_validate(
            {**base, "rate_limits": {"quotas": {"codex": {"calls": 1, "per": "1h"}}}}
        )


# -- quota windows ----------------------------------------------------------------------------


def test_a_configured_quota_waits_until_enough_of_the_window_has_left_it() -> None:
    quota = QuotaConfig(tokens=300, per=3600)
    old = entry(started_at=NOW - timedelta(minutes=50), input_tokens=150, output_tokens=0)
    new = entry(started_at=NOW - timedelta(minutes=10), input_tokens=100, output_tokens=0)
    coming = rules.Forecast(tokens=100)
    assert configured_wait([old, new], "claude", quota, coming, NOW) == old.started_at + timedelta(
        hours=1
    )
    assert configured_wait([new], "claude", quota, coming, NOW) is None
    assert configured_wait([old, new], "codex", quota, coming, NOW) is None  # another adapter
    huge = rules.Forecast(tokens=10_000)  # never fits: it waits for an empty window only
    assert configured_wait([old, new], "claude", quota, huge, NOW) == new.started_at + timedelta(
        hours=1
    )
    calls = QuotaConfig(calls=2, per=60)
    recent = [entry(started_at=NOW - timedelta(seconds=s)) for s in (50, 10)]
    assert configured_wait(recent, "claude", calls, rules.Forecast(), NOW) == NOW + timedelta(
        seconds=10
    )


# -- the ledger and the gate, on both backends ------------------------------------------------


@pytest.fixture(params=["file", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str | None:
    """None for the file backend, else the URL of a fresh PostgreSQL database."""
    return None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def store(backend: str | None, tmp_path: Path) -> AsyncIterator[StateStore]:
    if backend is None:
        async with FileStateStore(tmp_path / "state") as found:
            yield found
        return
    from orchestrator.state.postgres.store import PostgresStateStore

    async with await PostgresStateStore.connect(backend) as pg:
        yield pg


def run_config(tmp_path: Path, **extra: Any) -> RunConfig:
    return RunConfig.model_validate(
        {
            "repo": str(tmp_path),
            "adapters": {"claude": {}, "codex": {}},
            "default_adapter": "claude",
            "tasks": [{"id": "t1", "prompt": "x"}],
            **extra,
        }
    )


async def test_a_call_is_recorded_once_open_then_closed(store: StateStore) -> None:
    ledger = Ledger(store)
    opened = entry(ended_at=None, cost_usd=None, cost_source="none", forecast_usd=0.2)
    await ledger.opened(opened)
    await ledger.opened(opened)  # a retried write after a lost answer: the same record
    closed = opened.model_copy(update={"ended_at": NOW, "cost_usd": 0.4, "cost_source": "cli"})
    await ledger.closed(closed)
    await Ledger(store).closed(closed)  # retried by another process: closed already, no change
    found = await ledger.entries("s1")
    assert found == [closed]
    assert await ledger.entries("s2") == []


async def test_the_gate_prices_holds_and_says_a_spent_budget_once(
    store: StateStore, tmp_path: Path
) -> None:
    heard: list[str] = []

    async def exceeded(over: rules.Exceeded, task: str | None) -> None:
        heard.append(f"{over.scope.key} by {task}")

    config = run_config(tmp_path, budgets={"run": {"tokens": 150}})
    gate = SpendGate(store, config, "s1", on_exceeded=exceeded)
    await gate.load()
    ticket = await gate.open(CallPlan(task="t1", phase="build", adapter="codex", model="gpt-5"))
    done = await gate.close(
        ticket,
        usage=Usage(input_tokens=100_000, output_tokens=1_000),
        outcome="succeeded",
        account="codex: key OPENAI_API_KEY",
    )
    assert done.cost_source == f"built-in {PRICES_AS_OF}"
    assert done.cost_usd == pytest.approx((100_000 * 1.25 + 1_000 * 10.0) / 1e6)
    assert heard == ["run by t1"]  # after the call, with its real figure
    with pytest.raises(SpendHeld) as held:
        await gate.open(CallPlan(task="t2", phase="build", adapter="claude"))
    assert held.value.kind == "budget" and held.value.until is None
    assert "the run's budget (150 tokens, budgets.run) is spent" in held.value.reason
    assert heard == ["run by t1"]  # said once until raised
    await store.put_record(RAISES, "s1", {"run": {"tokens": 1_000_000}})
    await gate.refresh(force=True)
    ticket = await gate.open(CallPlan(task="t2", phase="build", adapter="claude"))
    unpriced = await gate.close(
        ticket, usage=Usage(input_tokens=5), outcome="succeeded", model="fake-model"
    )
    assert (unpriced.cost_usd, unpriced.cost_source) == (None, "none")
    fresh = SpendGate(store, config, "s1")  # a resume reads the same ledger
    await fresh.load()
    assert [e.call for e in await fresh.run_entries()] == [done.call, unpriced.call]


async def test_the_gate_holds_a_call_until_a_reported_or_configured_quota_resets(
    store: StateStore, tmp_path: Path
) -> None:
    config = run_config(tmp_path, rate_limits={"quotas": {"codex": {"calls": 1, "per": "1h"}}})
    parked: dict[str, datetime] = {}
    gate = SpendGate(store, config, "s1", parked_until=parked.get)
    await gate.load()
    resets = datetime.now(UTC) + timedelta(minutes=30)
    ticket = await gate.open(CallPlan(task="t1", phase="build", adapter="claude"))
    report = AgentEvent(
        kind=EventKind.QUOTA, text="five_hour limit", reset_at=resets, data={"utilization": 0.97}
    )
    await gate.close(ticket, usage=Usage(input_tokens=1), outcome="succeeded", events=[report])
    with pytest.raises(SpendHeld) as held:
        await gate.open(CallPlan(task="t2", phase="build", adapter="claude"))
    assert held.value.kind == "quota" and held.value.until == resets
    assert "claude's five_hour limit (97% used)" in held.value.reason
    # A rate limit another task hit (the scheduler's park) holds the adapter the same way.
    parked["codex"] = datetime.now(UTC) + timedelta(minutes=5)
    with pytest.raises(SpendHeld, match="codex is parked on a rate limit until "):
        await gate.open(CallPlan(task="t3", phase="build", adapter="codex"))
    parked.clear()
    first = await gate.open(CallPlan(task="t3", phase="build", adapter="codex"))
    with pytest.raises(SpendHeld, match=r"rate_limits\.quotas\.codex is used up") as window:
        await gate.open(CallPlan(task="t4", phase="build", adapter="codex"))
    assert window.value.until == first.entry.started_at + timedelta(hours=1)


def test_claude_reports_its_quota_as_it_goes() -> None:
    line = {
        "type": "rate_limit_event",
        "rate_limit_info": {
            "status": "allowed_warning",
            "resetsAt": 1_795_000_000,
            "rateLimitType": "five_hour",
            "utilization": 0.91,
        },
    }
    (event,) = parse_value(line)
    assert event.kind == EventKind.QUOTA and event.data["utilization"] == 0.91
    assert event.reset_at == datetime.fromtimestamp(1_795_000_000, UTC)
    rejected = {**line, "rate_limit_info": {**line["rate_limit_info"], "status": "rejected"}}
    assert [e.kind for e in parse_value(rejected)] == [EventKind.RATE_LIMITED]


def test_the_cost_report_says_what_did_not_land() -> None:
    states = {
        "t1": TaskState(task_id="t1", session_id="s1", status=TaskStatus.DONE, attempt=2),
        "t2": TaskState(task_id="t2", session_id="s1", status=TaskStatus.FAILED, attempt=1),
    }
    entries = [
        entry(attempt=1, cost_usd=1.0),  # t1's first attempt failed: did not land
        entry(attempt=2, cost_usd=2.5, phase="review"),
        entry(task="t2", cost_usd=1.0),
        entry(task="t2", cost_usd=None, cost_source="none", account="codex: key X"),
        entry(session_id="s0", cost_usd=100.0),  # another run
    ]
    report = cost_report("s1", entries, states, by="phase")
    assert report.total.calls == 4 and report.total.usd == pytest.approx(4.5)
    assert report.total.not_landed_usd == pytest.approx(2.0)
    assert report.not_landed_share == pytest.approx(2.0 / 4.5)
    assert [g.key for g in report.groups] == ["review", "build"]
    assert report.total.unpriced_calls == 1
    assert [g.key for g in report.top_tasks] == ["t1", "t2"]
    assert report.cost_sources == {"cli": 3, "none": 1}


def test_the_tally_keeps_an_adapters_window_as_calls_come_close_and_the_clock_moves() -> None:
    rng = random.Random(7)
    tally, calls = Tally("s1"), []
    now = NOW
    for step in range(400):
        now += timedelta(seconds=rng.randint(0, 20))
        roll = rng.random()
        if roll < 0.5 or not calls:  # a call starts (now, or a little in the past: a team's)
            started = now - timedelta(seconds=rng.choice([0, 0, 0, 30, 400]))
            call = entry(
                started_at=started, ended_at=None, cost_usd=None, forecast_usd=0.25,
                forecast_tokens=40, adapter=rng.choice(["claude", "codex"]),
            )  # fmt: skip
            calls.append(call)
            tally.put(call)
        elif roll < 0.85:  # one closes
            index = rng.randrange(len(calls))
            closed = calls[index].model_copy(update={"ended_at": now, "cost_usd": rng.random()})
            calls[index] = closed
            tally.put(closed)
        else:  # one is dropped (its record could not be written)
            tally.drop(calls.pop(rng.randrange(len(calls))).call)
        since = now - timedelta(seconds=rng.choice([300, 300, 300, 60]))
        for adapter in ("claude", "codex"):
            inside = [c for c in calls if c.adapter == adapter and c.started_at > since]
            usd, tokens, count = tally.window(adapter, since)
            assert count == len(inside), step
            assert usd == pytest.approx(sum(c.counted_usd for c in inside), abs=1e-9), step
            assert tokens == pytest.approx(sum(c.counted_tokens for c in inside)), step
