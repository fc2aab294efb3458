"""A phase's CLI call told to the spend gate once it has ended: what it spent, under which
account and model, and what the CLI said of its quota (``orchestrator.spend.gate``)."""

from __future__ import annotations

from orchestrator.runner.phase_call import PhaseRun
from orchestrator.spend.gate import SpendGate, Ticket
from orchestrator.spend.ledger import LedgerEntry

__all__ = ["close_ticket"]


async def close_ticket(gate: SpendGate, ticket: Ticket, ran: PhaseRun) -> LedgerEntry:
    outcome = ran.cli.outcome
    return await gate.close(
        ticket,
        usage=outcome.usage,
        outcome=str(outcome.kind),
        model=ran.model,
        account=ran.account,
        events=ran.cli.events,
    )
