"""One workstation of ``test_spend_fund.py``: a spend gate in a process of its own, on the
file store of a repository or a PostgreSQL database, driven one command a line on stdin and
answering one line on stdout:

- ``open``: the gate's ``open`` of a build call of its task (``started`` or ``held <reason>``);
- ``close <usd>``: that call closed at that real cost (``closed``);
- ``reserve``: its forecast reserved in the fund alone, no ledger record (a process that dies
  between the two), ``reserved`` or ``held``.

Usage: ``python fund_child.py file|postgresql <repository or URL> <session> <task>``."""

from __future__ import annotations

import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.models import utcnow
from orchestrator.process import procid
from orchestrator.spend import budgets as rules
from orchestrator.spend.gate import CallPlan, SpendGate, SpendHeld, Ticket
from orchestrator.spend.ledger import LedgerEntry, new_call_key
from orchestrator.spend.reservations import Fund
from orchestrator.state.file.store import FileStateStore
from orchestrator.state.protocol import StateStore

BUDGETS = {"run": {"usd": 1.0}, "estimate": {"usd": 0.6}}


def config(repo: str) -> RunConfig:
    return RunConfig.model_validate(
        {
            "repo": repo,
            "adapters": {"claude": {}},
            "default_adapter": "claude",
            "tasks": [{"id": "t1", "prompt": "x"}],
            "budgets": BUDGETS,
        }
    )


def alive(who: Mapping[str, Any]) -> bool | None:
    proc = procid.ProcessId.from_dict(dict(who))
    return None if proc is None else procid.is_alive(proc)


def say(line: str) -> None:
    sys.stdout.write(line + "\n")
    sys.stdout.flush()


async def serve(store: StateStore, repo: str, session: str, task: str) -> None:
    run = config(repo)
    who = procid.current().as_dict()
    gate = SpendGate(store, run, session, who=who, alive=alive)
    await gate.load()
    ticket: Ticket | None = None
    say("ready")
    while True:
        line = await anyio.to_thread.run_sync(sys.stdin.readline)
        if not line:
            return
        command, *rest = line.split()
        await gate.refresh(force=True)  # a raised limit is read at once
        if command == "open":
            try:
                ticket = await gate.open(CallPlan(task=task, phase="build", adapter="claude"))
            except SpendHeld as held:
                say(f"held {held.kind} {held.reason}")
            else:
                say(f"started {ticket.entry.call}")
        elif command == "close" and ticket is not None:
            await gate.close(ticket, usage=Usage(cost_usd=float(rest[0])), outcome="succeeded")
            say("closed")
        elif command == "reserve":
            fund = Fund(store, session, who=who, alive=alive)
            entry = LedgerEntry(
                call=new_call_key(),
                session_id=session,
                task=task,
                phase="build",
                adapter="claude",
                started_at=utcnow(),
                forecast_usd=0.6,
            )
            over = await fund.reserve(entry, rules.scopes_for(gate.budgets, task, "claude"))
            say(f"reserved {entry.call}" if over is None else "held")
        else:
            say(f"unknown command {line.strip()!r}")


async def main(backend: str, target: str, session: str, task: str) -> None:
    if backend == "file":
        async with FileStateStore.for_repo(target) as store:
            await serve(store, target, session, task)
    else:
        from orchestrator.state.postgres.store import PostgresStateStore

        repo = str(Path.cwd())
        async with await PostgresStateStore.connect(target) as pg:
            await serve(pg, repo, session, task)


if __name__ == "__main__":
    anyio.run(main, *sys.argv[1:5])
