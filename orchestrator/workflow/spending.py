"""A phase's CLI call told to the spend gate (``orchestrator.spend.gate``): followed by the
spend meter while it runs (``orchestrator.spend.meter``), and closed in the ledger whatever way
it ended, with what it spent, under which account and model, and what the CLI said of its
quota.

``MeteredCall`` gives the runner the meter's ``heard`` (``on_cli_event``) and a ``halt`` event
of the call's own, which the meter sets when a budget the call counts to is passed while it
runs. ``close`` records the call once, never at $0 for want of a final figure: the CLI's final
usage when it said one, else what it streamed (``cost_source`` ``running``), else, for a call
that did not end on its own (stopped, timed out, cancelled, or ``call_phase_cli`` raised), its
forecast (``forecast``). It runs shielded from cancellation; then a budget the meter saw
passed is said (``budget.exceeded``, once per scope), which applies ``budgets.on_exceed``.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator, Callable
from typing import TypeVar

import anyio
import anyio.to_thread

from orchestrator.adapter import ProcessResult, Usage
from orchestrator.runner.phase_call import PhaseRun
from orchestrator.spend.budgets import Exceeded
from orchestrator.spend.gate import SpendGate, Ticket
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.spend.meter import CallMeter, follow

__all__ = ["MeteredCall", "close_ticket", "failing"]

log = logging.getLogger(__name__)

T = TypeVar("T")


def _nothing() -> None:
    return None


async def close_ticket(gate: SpendGate, ticket: Ticket, ran: PhaseRun) -> LedgerEntry:
    """Close a call that was not followed by a meter, with what its CLI said it spent."""
    outcome = ran.cli.outcome
    return await gate.close(
        ticket,
        usage=outcome.usage,
        outcome=str(outcome.kind),
        model=ran.model,
        account=ran.account,
        events=ran.cli.events,
    )


def failing(metered: MeteredCall | None) -> contextlib.AbstractAsyncContextManager[None]:
    """``metered.failing()``, or nothing for a call no meter follows."""
    return metered.failing() if metered is not None else contextlib.nullcontext()


class MeteredCall:
    """One admitted call, followed while it runs and closed once."""

    def __init__(self, gate: SpendGate, ticket: Ticket) -> None:
        self.gate = gate
        self.ticket = ticket
        self.halt = anyio.Event()
        self.meter: CallMeter = follow(gate, ticket, self.halt.set)
        self.closed: LedgerEntry | None = None

    @property
    def over(self) -> Exceeded | None:
        """The budget the meter stopped this call for, if it did."""
        return self.meter.over

    async def close(self, ran: PhaseRun | None, *, outcome: str | None = None) -> LedgerEntry:
        """Record what the call spent (``ran`` None: ``call_phase_cli`` raised; ``outcome``
        says how it ended then), shielded, once; then say the budget it passed, if any."""
        with anyio.CancelScope(shield=True):
            known = self.closed
            closed = known if known is not None else (await self._close(ran, outcome, _nothing))[0]
            await self._said(closed)
        return closed

    async def close_then(self, ran: PhaseRun, then: Callable[[], T]) -> tuple[LedgerEntry, T]:
        """``close`` of a call that ended, with ``then()`` (blocking work after its CLI) run
        in its ledger record's worker-thread call (``SpendGate.close_then``); in a call of
        its own when the record was closed already. Its phase goes on to its completion,
        which carries the spend line where the run has it carried (``carried``)."""
        with anyio.CancelScope(shield=True):
            known = self.closed
            if known is None:
                closed, made = await self._close(ran, None, then, carried=True)
            else:
                closed, made = known, await anyio.to_thread.run_sync(then)
            await self._said(closed)
        return closed, made

    async def _close(
        self,
        ran: PhaseRun | None,
        outcome: str | None,
        then: Callable[[], T],
        *,
        carried: bool = False,
    ) -> tuple[LedgerEntry, T]:
        self.meter.ended()
        usage, basis = self._figure(ran)
        closed, made = await self.gate.close_then(
            self.ticket,
            usage=usage,
            outcome=str(ran.cli.outcome.kind) if ran is not None else outcome,
            model=ran.model if ran is not None else self.meter.model,
            account=ran.account if ran is not None else "",
            events=ran.cli.events if ran is not None else (),
            basis=basis,
            then=then,
            carried=carried,
        )
        self.closed = closed
        return closed, made

    async def _said(self, closed: LedgerEntry) -> None:
        if self.over is not None:
            await self.gate.say_exceeded(self.over, closed.task)

    async def close_failed(self, outcome: str) -> None:
        """``close`` on a path already failing: an error recording it is logged, so it does
        not hide the failure. A call whose CLI said nothing (never started, or stopped before
        its first line) is left open: counted at its forecast, as the ledger counts a call
        that may have run, and closed only by what a CLI said."""
        if not self.meter.spoke:
            return
        try:
            await self.close(None, outcome=outcome)
        except Exception as exc:  # the failure it is on is said already: a warning, no trace
            log.warning(
                "call %s: its ledger record could not be closed: %s", self.ticket.entry.call, exc
            )

    @contextlib.asynccontextmanager
    async def failing(self) -> AsyncIterator[None]:
        """Around the call: one that raises is closed (``close_failed``) as ``crashed`` (an
        error) or ``cancelled`` (cancellation, an interrupt), and the failure goes on."""
        try:
            yield
        except Exception:
            await self.close_failed("crashed")
            raise
        except BaseException:
            await self.close_failed("cancelled")
            raise

    def _figure(self, ran: PhaseRun | None) -> tuple[Usage | None, str | None]:
        final = ran.cli.outcome.usage if ran is not None else None
        if final is not None:
            return final, None
        running = self.meter.usage()
        if running is not None:
            return running, "running"
        if ran is None or not _ended_on_its_own(ran.cli.result):
            entry = self.ticket.entry
            forecast = Usage(input_tokens=entry.forecast_tokens or 0, cost_usd=entry.forecast_usd)
            return forecast, "forecast"
        return None, None  # it ended saying nothing of its usage: as its CLI does


def _ended_on_its_own(result: ProcessResult) -> bool:
    stopped = result.timed_out or result.idle_timed_out or result.cancelled or result.ended_early
    return not stopped and result.signal is None and result.exit_code is not None
