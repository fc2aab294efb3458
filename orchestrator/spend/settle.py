"""A call its orchestrator never closed, closed from its CLI's own words.

An orchestrator killed while its CLI ran, or after the CLI said what it spent but before the
ledger heard it, leaves the call's record open: counted at its forecast for ever, whatever
the CLI really spent. The run's next orchestrator (``council resume``; in a team, any
workstation that takes the run up on the machine the call ran on) closes each such call from
the file the CLI's output went to (``LedgerEntry.log``: its lines as it printed them, put on
disk at every line that carries a figure), read by the call's own adapter, as the run would
have read it:

- the usage its events carried (as the run sums them: the final figure, its own cost when it
  said one, else the price table's);
- else what it said while it ran (``running_usage`` events: the figure so far);
- else, a log in which it said nothing of what it spent, its forecast (``cost_source``
  ``forecast``): it was started and may have spent that much; never $0.

This module is the arithmetic (``usage_in_log``, ``closed_from``); the reading of the file and
the question whether its orchestrator is gone are the caller's (``scheduler.settling``).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from orchestrator.adapter import AgentEvent, EventKind, Stream, Usage
from orchestrator.config.budgets import PriceConfig
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.spend.prices import cost_of, find_price
from orchestrator.spend.so_far import SoFar

__all__ = ["CRASHED", "FORECAST", "LogUsage", "Parse", "closed_from", "usage_in_log"]

CRASHED = "crashed"  # the outcome of a call closed by its successor
FORECAST = "forecast"  # the cost source of one closed at its forecast: it said nothing

Parse = Callable[[str, Stream], list[AgentEvent]]  # an adapter's ``parse_line(text, stream)``

log = logging.getLogger(__name__)

_PREFIXES: tuple[tuple[str, Stream], ...] = (("stdout| ", "stdout"), ("stderr| ", "stderr"))


class LogUsage:
    """What a CLI's log says it spent: ``usage`` (None: it said nothing), whether that is its
    final figure (``final``) or what it had said when it stopped, and the model it named."""

    def __init__(self, usage: Usage | None, *, final: bool, model: str | None) -> None:
        self.usage = usage
        self.final = final
        self.model = model


def usage_in_log(lines: Iterable[str], parse: Parse) -> LogUsage:
    """Read a CLI's log (``process.output.LogSink``'s lines: ``# `` the orchestrator's own,
    ``stdout| `` and ``stderr| `` the CLI's) with its adapter's ``parse``, summed as the meter
    sums a running call's (``so_far``)."""
    so_far = SoFar()
    model: str | None = None
    for raw in lines:
        line = raw.rstrip("\n")
        said = next(((p, s) for p, s in _PREFIXES if line.startswith(p)), None)
        if said is None:
            continue  # the orchestrator's own line, or one cut by truncation
        try:
            events = parse(line[len(said[0]) :], said[1])
        except Exception:  # an adapter's bug: the line says nothing here, as in the run
            log.debug("a log line the adapter could not parse was skipped", exc_info=True)
            continue
        for event in events:
            named = event.data.get("model") if event.kind == EventKind.STARTED else None
            if isinstance(named, str) and named and not named.startswith("<"):
                model = named
            so_far.add(event)
    return LogUsage(so_far.total(), final=so_far.final, model=model)


def closed_from(
    entry: LedgerEntry, said: LogUsage, prices: Mapping[str, PriceConfig], now: datetime
) -> LedgerEntry:
    """``entry`` closed with what its log says (``said``), priced as the gate prices a call."""
    named = said.model or entry.model
    update: dict[str, object] = {"ended_at": now, "outcome": CRASHED, "model": named}
    used = said.usage
    if used is None:  # nothing said: its forecast, the least it may have spent
        update.update(cost_usd=entry.forecast_usd, cost_source=FORECAST)
        return entry.model_copy(update=update)
    cost, source = used.cost_usd, "cli"
    if cost is None:
        price = find_price(named, prices)
        if price is not None:
            cost, source = cost_of(used, price), price.source
        elif entry.forecast_usd is not None:
            cost, source = entry.forecast_usd, FORECAST  # tokens with no price: not $0
        else:
            source = "none"
    update.update(
        input_tokens=used.input_tokens,
        output_tokens=used.output_tokens,
        cache_read_tokens=used.cache_read_tokens,
        cache_write_tokens=used.cache_write_tokens,
        cost_usd=cost,
        cost_source=source,
    )
    return entry.model_copy(update=update)
