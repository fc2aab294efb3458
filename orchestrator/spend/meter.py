"""The spend meter: a call's budgets checked while its CLI runs, not only before and after.

The gate admits a call on its forecast and records what it spent once it ended; between the
two a CLI can stream far past every budget. ``follow(gate, ticket, stop)`` gives the open call
a ``CallMeter``: the runner hands it every event its adapter parses (``heard``), and it keeps
the call's usage so far as the stream says it (``EventKind.RUNNING_USAGE``):

- the sum of the usage of the call's ``usage``-carrying events (the CLI's own figures, which
  the outcome sums), plus the ``running_usage`` increments said since the last of them (a
  final figure covers the steps before it; an increment with the same ``data["step"]`` as an
  earlier one is that step said again and replaces it);
- priced as the gate prices a closed call: the CLI's own cost where it gave one, else the
  price table's (``prices.find_price``/``cost_of``, for the model the CLI said it runs, else
  the configured one); a model without a price counts in tokens only.

**What is left, for calls side by side.** After each figure, every budget scope the call
counts to (``budgets.scopes_for``: the run, its task, its adapter) is summed as the gate's
tally has it, with each call this gate's meter follows counted at its running figure in place
of the forecast it was admitted on (calls of other processes stay at their forecast until
closed). A call's share of a scope is thus what is left minus the others' running figures: a
call alone may use all that is left, calls side by side share it as they really spend it,
never a fixed slice one of them may not need. When a scope's sum passes its limit (dollars
or tokens), the meter says so once (``over``) and stops every call it follows on that scope,
through the ``stop`` each was given (the runner's ``halt``: the CLI is stopped with grace, as
a cancelled task's is). The step that passed it was spent already: a scope ends at most one
streamed step past its limit, whatever the number of calls on it.

The meter says nothing in the store: the caller closes the call's ledger record with
``usage()`` (``cost_source`` ``running``) and has the gate say ``budget.exceeded`` once per
scope (``SpendGate.say_exceeded``), which applies ``budgets.on_exceed``.
"""

from __future__ import annotations

import weakref
from collections.abc import Callable

from orchestrator.adapter import AgentEvent, EventKind, Usage
from orchestrator.models import utcnow
from orchestrator.spend.budgets import Exceeded, Forecast, ScopeSpend, counts_to
from orchestrator.spend.gate import SpendGate, Ticket
from orchestrator.spend.prices import cost_of, find_price
from orchestrator.spend.so_far import SoFar

__all__ = ["CallMeter", "Meters", "follow", "meters_of"]


class Meters:
    """The open calls of one gate that are followed while they run."""

    def __init__(self, gate: SpendGate) -> None:
        self._gate = gate
        self.open: dict[str, CallMeter] = {}  # call key -> its meter
        self.prices = gate.prices

    def follow(self, ticket: Ticket, stop: Callable[[], None]) -> CallMeter:
        meter = CallMeter(self, ticket, stop)
        self.open[ticket.entry.call] = meter
        return meter

    def check(self, meter: CallMeter) -> None:
        """Stop the calls of the first scope of ``meter``'s call that its running figures
        pass."""
        if meter.over is not None:
            return
        gate, now = self._gate, utcnow()
        for scope in gate.scopes_of(meter.entry):
            spend = gate.scope_spent(scope)
            usd, tokens = spend.usd, float(spend.tokens)
            sharing = [
                other
                for other in self.open.values()
                if counts_to(other.entry, scope, gate.session_id, now)
            ]
            for other in sharing:  # its running figure in place of its forecast
                usd += other.usd - other.entry.counted_usd
                tokens += other.tokens - other.entry.counted_tokens
            limit = scope.limit
            if (limit.usd is not None and usd > limit.usd) or (
                limit.tokens is not None and tokens > limit.tokens
            ):
                over = Exceeded(ScopeSpend(scope, max(usd, 0.0), round(tokens)), Forecast())
                for other in sharing:
                    other.stopped(over)
                return

    def ended(self, meter: CallMeter) -> None:
        self.open.pop(meter.entry.call, None)


_METERS: weakref.WeakKeyDictionary[SpendGate, Meters] = weakref.WeakKeyDictionary()


def meters_of(gate: SpendGate) -> Meters:
    """The meters of ``gate``'s calls (one set per gate: its calls side by side share it)."""
    found = _METERS.get(gate)
    if found is None:
        found = _METERS[gate] = Meters(gate)
    return found


def follow(gate: SpendGate, ticket: Ticket, stop: Callable[[], None]) -> CallMeter:
    """Follow ``ticket``'s call while it runs; ``stop`` stops its CLI (called once, at most)."""
    return meters_of(gate).follow(ticket, stop)


class CallMeter:
    """One open call's usage so far, and whether a budget stopped it."""

    def __init__(self, meters: Meters, ticket: Ticket, stop: Callable[[], None]) -> None:
        self._meters = meters
        self._stop = stop
        self.entry = ticket.entry
        self.model = ticket.entry.model  # the CLI's own word replaces it (its start event)
        self.over: Exceeded | None = None  # the budget that stopped it
        self._so_far = SoFar()
        self.usd = 0.0  # priced so far (unpriced usage counts in tokens only)
        self.tokens = 0
        self.priced = True
        self.heard_usage = False
        self.spoke = False  # its CLI started and said something (a log line it parsed)

    def heard(self, event: AgentEvent) -> None:
        """An event of the call's CLI, as its adapter parsed it (the runner's ``on_cli_event``)."""
        self.spoke = True
        if event.kind == EventKind.STARTED:
            model = event.data.get("model")
            if isinstance(model, str) and model and not model.startswith("<"):
                self.model = model
            return
        if not self._so_far.add(event):
            return
        self.heard_usage = True
        self._figure()
        self._meters.check(self)

    def _figure(self) -> None:
        price = find_price(self.model, self._meters.prices)
        usd, tokens, priced = 0.0, 0, True
        for usage in self._so_far.parts():
            tokens += (
                usage.input_tokens
                + usage.output_tokens
                + usage.cache_read_tokens
                + usage.cache_write_tokens
            )
            if usage.cost_usd is not None:
                usd += usage.cost_usd
            elif price is not None:
                usd += cost_of(usage, price)
            else:
                priced = False
        self.usd, self.tokens, self.priced = usd, tokens, priced

    def usage(self) -> Usage | None:
        """The call's usage so far, its cost the meter's (None: the stream said none)."""
        if not self.heard_usage:
            return None
        parts = self._so_far.parts()
        return Usage(
            input_tokens=sum(u.input_tokens for u in parts),
            output_tokens=sum(u.output_tokens for u in parts),
            cache_read_tokens=sum(u.cache_read_tokens for u in parts),
            cache_write_tokens=sum(u.cache_write_tokens for u in parts),
            cost_usd=round(self.usd, 8) if self.priced else None,
        )

    def stopped(self, over: Exceeded) -> None:
        """A budget it counts to is passed: stopped, once."""
        if self.over is not None:
            return
        self.over = over
        self._stop()

    def ended(self) -> None:
        """The call ended: no longer counted at its running figure (its record is closed)."""
        self._meters.ended(self)
