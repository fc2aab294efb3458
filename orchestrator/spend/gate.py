"""The spend gate: every CLI call of a run passes it, before it starts and after it ends.

Before (``open``): the call's forecast (``Tally.forecast``) is checked against every budget
it counts to and its adapter's quota (``quota``); a call that does not fit is not started:
``SpendHeld`` says why, and until when when a quota's reset is known (``quota_watch``);
``call.held`` says it once per hold of a task (``held``; ``holding`` asks without saying;
``holds``: the values and the voice that says each thing once). A call that fits gets
its ledger record, opened (``ledger``), which also reserves its forecast: calls started side
by side cannot all take the same room. Before that record is opened, the forecast is reserved
in the run's fund in the store (``reservations``), atomically across processes and
workstations: a call another process's calls left no room for is held the same way.

After (``close``): the call's record is closed with what the CLI said it spent (tokens, its
own cost, else the price table's, else "no price"); a scope that is now spent is said once
(``budget.exceeded``), and ``on_exceeded`` hears it (the scheduler stops the run when
``budgets.on_exceed`` is ``stop``).

The gate keeps the ledger's running sums in memory (read once when the run starts, its own
calls added as they go), and of the calls themselves only those still open and those an
adapter's quota window reads (``tally``): the others are in the store. With a team's store
it reads the ledger again every ``refresh`` seconds, so other workstations' calls count too;
a limit raised with ``council budget raise`` is read from the store the same way (``RAISES``).
"""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeVar

from orchestrator.adapter import AgentEvent, Usage
from orchestrator.config.budgets import BudgetsConfig, PriceConfig
from orchestrator.config.run import RunConfig
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.spend import budgets as rules
from orchestrator.spend.budgets import Exceeded, Forecast
from orchestrator.spend.holds import CallPlan, Hold, SpendHeld, Voice, held_text
from orchestrator.spend.ledger import Ledger, LedgerEntry, new_call_key
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.spend.line import SpendLine
from orchestrator.spend.prices import cost_of, find_price
from orchestrator.spend.quota import QuotaHold
from orchestrator.spend.quota_watch import QuotaWatch
from orchestrator.spend.raising import RAISES
from orchestrator.spend.reservations import Alive, Fund
from orchestrator.spend.tally import Tally
from orchestrator.state.carried import CarriedPut, Carrier
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import UpdateTask

__all__ = ["RAISES", "CallPlan", "Hold", "SpendGate", "SpendHeld", "Ticket", "held_text"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _nothing() -> None:
    return None


def _kept(_record: KeyedRecord | None) -> None:
    return None  # a carried spend line: nothing more to do once written


_PUBLISH_EVERY = 2.0
_RAISES_EVERY = 1.0  # seconds between reads of the raised limits while the run ticks


@dataclass
class Ticket:
    entry: LedgerEntry


class SpendGate:
    def __init__(
        self,
        store: StateStore,
        config: RunConfig,
        session_id: str,
        *,
        budget_task: Callable[[str], str] = lambda task: task,
        parked_until: Callable[[str], datetime | None] = lambda adapter: None,
        on_exceeded: Callable[[Exceeded, str | None], Awaitable[None]] | None = None,
        refresh: float | None = None,
        who: Mapping[str, Any] | None = None,
        alive: Alive | None = None,
        host: str = "",
    ) -> None:
        self._store = store
        self._host = host  # this machine, on each call's record (``LedgerEntry.host``)
        self._config = config
        self._ledger = Ledger(store)
        self.session_id = session_id
        self._budget_task = budget_task  # a candidate's calls count to its council task
        self._refresh = refresh  # seconds between reads of the ledger (a team's), None: never
        self._tally = self._new_tally()
        self._read_at = 0.0
        self._raises: dict[str, Any] = {}
        self._raises_version = 0
        self._raises_read_at = float("-inf")
        self.budgets: BudgetsConfig = config.budgets
        self._voice = Voice(store, on_exceeded)  # each hold and each spent scope said once
        self._quotas = QuotaWatch(config.rate_limits, parked_until)
        self._published = float("-inf")  # when the spend line was last kept (monotonic)
        # A phase's completion carries the line (``carried_line``) after a call closed with
        # ``carried``: that close does not write it (the scheduler's runs; ``line_carried``).
        self.line_carried = False
        # The run's budgets reserved in the store, across processes (``reservations``): for a
        # run several processes share (``who`` given: a team's); one process alone reserves
        # in its tally, before its first await, which is as atomic and costs no write.
        self._fund = Fund(store, session_id, who=who, alive=alive) if who is not None else None

    # -- reading ----------------------------------------------------------------------------

    async def load(self) -> None:
        """Read the ledger and the raised limits (the run's start, a resume)."""
        self._tally = self._new_tally(await self._ledger.entries())
        self._read_at = time.monotonic()
        await self._read_raises()
        await self._sweep_fund()

    def _new_tally(self, entries: Iterable[LedgerEntry] = ()) -> Tally:
        """A tally of ``entries`` that keeps the closed calls of the adapters with a quota
        only (their window is asked; ``tally``)."""
        quotas = self._config.rate_limits.quotas
        return Tally(self.session_id, entries, kept=lambda adapter: adapter in quotas)

    async def refresh(self, *, force: bool = False) -> None:
        """Read again what other processes may have written (each tick of the scheduler):
        raised limits once a second (``force``: now), the ledger when it is shared and
        ``refresh`` seconds old."""
        if force or time.monotonic() - self._raises_read_at >= _RAISES_EVERY:
            await self._read_raises()
        await self._renew_fund()
        if self._refresh is not None and time.monotonic() - self._read_at >= self._refresh:
            mine = [e for e in self._tally.entries.values() if e.session_id == self.session_id]
            fresh = {entry.call: entry for entry in await self._ledger.entries()}
            for entry in mine:  # ours as this process knows them: a close may be newer here
                if entry.ended_at is not None or entry.call not in fresh:
                    fresh[entry.call] = entry
            self._tally = self._new_tally(fresh.values())
            self._read_at = time.monotonic()

    async def _read_raises(self) -> None:
        self._raises_read_at = time.monotonic()
        record = await self._store.get_record(RAISES, self.session_id)
        version = record.version if record is not None else 0
        if version == self._raises_version:
            return
        self._raises_version = version
        self._raises = dict(record.data) if record is not None else {}
        self.budgets = rules.raised(self._config.budgets, self._raises)
        self._voice.raised()  # a raised limit is said again when it is spent again

    def left_open(self) -> list[LedgerEntry]:
        """This run's calls whose records were open when the ledger was read (``load``): at a
        resume, those its dead orchestrator never closed (``spend.settle`` closes them)."""
        return [
            entry
            for entry in self._tally.entries.values()
            if entry.open and entry.session_id == self.session_id
        ]

    async def settled(self, entry: LedgerEntry) -> None:
        """Count ``entry``, closed by a successor from its CLI's log, at what it spent (in a
        team's fund too, where its dead holder's reservation counted it at its forecast)."""
        self._tally.put(entry)
        await self._settle(entry)

    async def run_entries(self) -> list[LedgerEntry]:
        """This run's calls, oldest first: read from the ledger (the gate keeps their sums)."""
        return await self._ledger.entries(self.session_id)

    # -- before a call ------------------------------------------------------------------------

    def forecast(self, adapter: str, phase: str) -> Forecast:
        return self._tally.forecast(adapter, phase, self.budgets.estimate)

    def exceeded(self, task: str, adapter: str, phase: str) -> Exceeded | None:
        """The budget a call of ``phase`` of ``task`` on ``adapter`` would not fit in."""
        if not self.budgets.any:
            return None
        scopes = rules.scopes_for(self.budgets, self._budget_task(task), adapter)
        coming, now = self.forecast(adapter, phase), utcnow()
        return rules.check(scopes, coming, lambda scope: self._tally.spent(scope, now))

    def quota_hold(self, adapter: str, phase: str, now: datetime | None = None) -> QuotaHold | None:
        """Why a call on ``adapter`` waits for a quota's reset, and until when."""
        now = now or utcnow()
        coming = functools.partial(self.forecast, adapter, phase)  # asked for a quota only
        return self._quotas.hold(adapter, coming, self._tally, now)

    def holding(
        self, task: str, adapter: str, phase: str, now: datetime | None = None
    ) -> Hold | None:
        """What holds a call of ``phase`` of ``task`` on ``adapter`` back now (a quota's reset
        first, then a budget), or None when it may start. Says nothing (``held`` does)."""
        quota = self.quota_hold(adapter, phase, now)
        if quota is not None:
            return Hold("quota", f"quota:{adapter}", held_text(quota), quota.until)
        over = self.exceeded(task, adapter, phase)
        if over is not None:
            return Hold("budget", over.scope.key, f"budget: {over.message()}", None, over.forecast)
        return None

    async def held(self, plan: CallPlan, hold: Hold) -> bool:
        """Say that ``plan``'s call is held (a ``call.held`` event), once per hold of its task:
        a task held again by the same thing (each tick asks) is not said again, until its
        call starts (``released``). True when it was said now."""
        return await self._voice.held(plan, hold)

    def released(self, task: str) -> None:
        """``task``'s hold is over (its call starts, or it left the queue)."""
        self._voice.released(task)

    async def check(self, plan: CallPlan) -> None:
        """Raise ``SpendHeld`` when the call may not start now (``open`` checks again)."""
        hold = self.holding(plan.task, plan.adapter, plan.phase)
        if hold is None:
            return
        over = self.exceeded(plan.task, plan.adapter, plan.phase)
        if hold.kind == "budget" and over is not None:
            await self._say(over, self._budget_task(plan.task))
        await self.held(plan, hold)
        raise SpendHeld(hold.reason.removeprefix("budget: "), until=hold.until, kind=hold.kind)

    async def open(self, plan: CallPlan) -> Ticket:
        """Admit the call and open its ledger record, or raise ``SpendHeld``: just before
        its CLI starts (a call opened is counted, at least at its forecast)."""
        ticket, _ = await self.open_then(plan, _nothing)
        return ticket

    async def open_then(
        self, plan: CallPlan, then: Callable[[], T], task_write: UpdateTask | None = None
    ) -> tuple[Ticket, T]:
        """``open``, with ``then()`` (blocking work just before the call's CLI starts) run in
        its ledger record's worker-thread call, before the write (``Ledger.opened_then``):
        not run when the call is held; and ``task_write`` (a task's update: the phase
        recorded started) written after the record, in the same store call."""
        await self.check(plan)
        self.released(plan.task)
        coming = self.forecast(plan.adapter, plan.phase)
        task = self._budget_task(plan.task)
        entry = LedgerEntry(
            call=new_call_key(),
            session_id=self.session_id,
            task=task,
            candidate=plan.task if task != plan.task else None,
            phase=plan.phase,
            attempt=plan.attempt,
            adapter=plan.adapter,
            model=plan.model,
            started_at=utcnow(),
            forecast_usd=coming.usd if coming.basis != "none" else None,
            forecast_tokens=coming.tokens if coming.basis != "none" else None,
            log=plan.log,
            host=self._host,
        )
        # Reserved before the first await: calls opened side by side each see the others'.
        self._tally.put(entry)
        try:
            await self._reserve(plan, entry)
        except BaseException:
            self._tally.drop(entry.call)
            raise
        try:
            made = await self._ledger.opened_then(entry, then, task_write)
        except BaseException:
            self._tally.drop(entry.call)
            await self._unreserve(entry)
            raise
        return Ticket(entry), made

    # -- the fund: budgets reserved in the store, across processes ------------------------------

    async def _reserve(self, plan: CallPlan, entry: LedgerEntry) -> None:
        """Reserve ``entry``'s forecast in the run's fund (``reservations``), or hold the
        call as ``check`` does when another process's calls took the room."""
        if self._fund is None or not self.budgets.any:
            return
        scopes = rules.scopes_for(self.budgets, entry.task, entry.adapter)
        over = await self._fund.reserve(entry, scopes)
        if over is None:
            return
        await self._say(over, entry.task)
        await self.held(plan, Hold("budget", over.scope.key, f"budget: {over.message()}", None))
        raise SpendHeld(over.message(), until=None, kind="budget")

    async def _unreserve(self, entry: LedgerEntry) -> None:
        if self._fund is None or not self.budgets.any:
            return
        try:
            await self._fund.release(entry.call)
        except Exception:  # the store is failing: the reservation goes with this holder's lease
            log.warning("the reservation of call %s could not be released", entry.call)

    async def _settle(self, closed: LedgerEntry) -> None:
        if self._fund is not None and self.budgets.any:
            await self._fund.settle(closed)

    async def _sweep_fund(self) -> None:
        if self._fund is not None and self.budgets.any:
            await self._fund.renew(force=True)
            await self._fund.sweep()

    async def _renew_fund(self) -> None:
        if self._fund is not None and self.budgets.any:
            await self._fund.renew()

    # -- after a call -------------------------------------------------------------------------

    async def close(
        self,
        ticket: Ticket,
        *,
        usage: Usage | None,
        outcome: str | None,
        model: str | None = None,
        account: str = "",
        events: Sequence[AgentEvent] = (),
        basis: str | None = None,
    ) -> LedgerEntry:
        """Record what the call spent, and what its CLI said of its quota. ``basis``: what
        ``usage`` is when it is not the CLI's final figure, said in ``cost_source``:
        ``running`` (what it streamed before it was stopped, ``meter``) or ``forecast``."""
        closed, _ = await self.close_then(
            ticket,
            usage=usage,
            outcome=outcome,
            model=model,
            account=account,
            events=events,
            basis=basis,
            then=_nothing,
        )
        return closed

    async def close_then(
        self,
        ticket: Ticket,
        *,
        usage: Usage | None,
        outcome: str | None,
        model: str | None = None,
        account: str = "",
        events: Sequence[AgentEvent] = (),
        basis: str | None = None,
        then: Callable[[], T],
        carried: bool = False,
    ) -> tuple[LedgerEntry, T]:
        """``close``, with ``then()`` (blocking work just after the call's CLI is gone) run in
        its ledger record's worker-thread call, before the write (``Ledger.closed_then``):
        what it raises closes nothing (the call stays open at its forecast, for ``settle``).
        ``carried``: a call whose phase goes on to be recorded complete, whose completion
        carries the spend line when ``line_carried`` (``carried_line``): not written here."""
        entry = ticket.entry
        used = usage or Usage()
        named = model or entry.model
        cost, source = used.cost_usd, "cli"
        if cost is None:
            price = find_price(named, self._config.prices)
            if price is not None:
                cost, source = cost_of(used, price), price.source
            else:
                source = "none"
        if basis is not None:
            source = basis if source == "cli" else f"{basis}, {source}"
        closed = entry.model_copy(
            update={
                "ended_at": utcnow(),
                "outcome": outcome,
                "model": named,
                "account": account,
                "input_tokens": used.input_tokens,
                "output_tokens": used.output_tokens,
                "cache_read_tokens": used.cache_read_tokens,
                "cache_write_tokens": used.cache_write_tokens,
                "cost_usd": cost,
                "cost_source": source,
            }
        )
        crash_point("ledger.closing", entry.call)
        made = await self._ledger.closed_then(closed, then)
        await self._settle(closed)
        self._tally.put(closed)
        self._quotas.heard(entry.adapter, events)
        await self._after(closed)
        if not (carried and self.line_carried):
            await self.publish()
        return closed, made

    async def publish(self, *, force: bool = False, held: str | None = None) -> None:
        """Keep the run's spend line in the store for reports (``line``): at most every
        ``_PUBLISH_EVERY`` seconds, or now when ``force``d (a run's end, a hold)."""
        data = self._line_due(force=force, held=held)
        if data is not None:
            await self._store.put_record(SPEND_LINES, self.session_id, data, durable=False)

    def carried_line(self) -> Carrier | None:
        """The spend line for another store call to carry (a phase's completion; ``state.
        carried``) when ``publish`` would write it now; None when it would not. It is a
        record for reports, not durable: a kill before that call leaves the line a few calls
        behind the ledger, as the throttle does, and the run's end writes it again."""
        data = self._line_due(force=False, held=None)
        if data is None:
            return None
        put = CarriedPut(SPEND_LINES, self.session_id, lambda _current: data, durable=False)
        return Carrier(put, _kept)

    def _line_due(self, *, force: bool, held: str | None) -> dict[str, Any] | None:
        """The spend line's data when it is due (``publish``), counted as kept now."""
        now = time.monotonic()
        if not force and now - self._published < _PUBLISH_EVERY:
            return None
        tally = self._tally
        if not tally.calls:
            return None
        usd, tokens = tally.run_total()
        line = SpendLine(
            usd=round(usd, 6),
            tokens=tokens,
            calls=tally.calls,
            unpriced_calls=tally.unpriced,
            budgets=[spend.as_data() for spend in self.spends()],
        )
        self._published = now
        line.held = held
        return line.model_dump(mode="json")

    async def _after(self, entry: LedgerEntry) -> None:
        """Say each budget of the call's scopes that is now spent (the real figure)."""
        if not self.budgets.any:
            return
        now = utcnow()
        for scope in rules.scopes_for(self.budgets, entry.task, entry.adapter):
            over = rules.check([scope], Forecast(), lambda s: self._tally.spent(s, now))
            if over is not None:
                await self._say(over, entry.task)

    async def _say(self, over: Exceeded, task: str | None) -> None:
        await self._voice.exceeded(over, task, self.budgets.on_exceed)

    # -- while a call runs (``meter``) ---------------------------------------------------------

    @property
    def prices(self) -> Mapping[str, PriceConfig]:
        return self._config.prices

    def scopes_of(self, entry: LedgerEntry) -> list[rules.Scope]:
        """The budget scopes ``entry``'s call counts to (none when no budget is set)."""
        if not self.budgets.any:
            return []
        return rules.scopes_for(self.budgets, entry.task, entry.adapter)

    def scope_spent(self, scope: rules.Scope) -> rules.ScopeSpend:
        """What ``scope`` has spent now (its open calls at their forecast)."""
        return self._tally.spent(scope, utcnow())

    async def say_exceeded(self, over: Exceeded, task: str | None) -> None:
        """Say a budget passed while calls ran (``meter``): once per scope, as ``close`` says
        one its closed calls spent; ``on_exceeded`` hears it."""
        await self._say(over, task)

    # -- for the scheduler and the report -----------------------------------------------------

    def spends(self) -> list[rules.ScopeSpend]:
        """Every budget's spend now: the run's, each adapter's, and each task's whose budget
        is spent (``budgets.all_spends``, from the running sums)."""
        now, budgets = utcnow(), self.budgets

        def spent(scope: rules.Scope) -> rules.ScopeSpend:
            return self._tally.spent(scope, now)

        found = []
        if budgets.run is not None:
            found.append(spent(rules.Scope("run", "", budgets.run)))
        for name, limit in budgets.adapters.items():
            found.append(spent(rules.Scope("adapter", name, limit)))
        if budgets.task is not None:
            each = [spent(rules.Scope("task", task, budgets.task)) for task in self._tally.tasks]
            found.extend(spend for spend in each if (spend.share() or 0) >= 1)
        return found
