"""What the cost ledger and the budget checks cost per CLI call, against the least they must do.

Every CLI call passes the spend gate twice (``orchestrator.spend.gate``): ``open`` checks the
call's forecast against each budget and quota and writes its ledger record (created only if
absent), ``close`` prices it and writes the record again with what it spent. Three sides, in
one process on one file store each, rounds alternating so machine noise hits all alike:

- ``ledger``: ``SpendGate.open`` + ``close`` of one call, with a run, a task and an adapter
  budget and a quota configured (every check runs), and ``--history`` calls already in the
  ledger (the checks read them);
- floor ``two writes``: the two durable record writes a ledger of calls cannot do without
  (create, then update at its version), the same data, nothing else;
- reference ``one process``: starting and reaping ``/bin/true`` through the orchestrator's own
  process wrapper (``process.command.run_command``), the least any CLI call costs before the
  CLI does anything (wall, and CPU of this process and its children).

It prints, per call, the median wall and CPU time of each side, and the ratios the ledger is
judged by: ledger / floor (what the checks and pricing add to the writes) and ledger / process
(what the ledger adds to a call, at its very cheapest).

    python bench/ledger_bench.py [--calls 200] [--rounds 5] [--history 1000]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import tempfile
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.process.command import run_command
from orchestrator.spend.gate import CallPlan, SpendGate
from orchestrator.spend.ledger import Ledger, LedgerEntry, new_call_key
from orchestrator.state import FileStateStore


def _cpu() -> float:
    own = time.process_time()
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return own + children.ru_utime + children.ru_stime


async def _timed(step: Callable[[int], Awaitable[None]], calls: int) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), _cpu()
    for n in range(calls):
        await step(n)
    return (time.perf_counter() - wall) / calls, (_cpu() - cpu) / calls


def _config(root: Path) -> RunConfig:
    return RunConfig.model_validate(
        {
            "repo": str(root),
            "adapters": {"claude": {}},
            "default_adapter": "claude",
            "budgets": {
                "run": {"usd": 1e9},
                "task": {"tokens": 10**12},
                "adapters": {"claude": {"usd": 1e9, "per": "day"}},
            },
            "rate_limits": {"quotas": {"claude": {"tokens": 10**12, "per": "5h"}}},
            "tasks": [{"id": "t1", "prompt": "x"}],
        }
    )


async def _history(store: FileStateStore, count: int) -> None:
    ledger, now = Ledger(store), datetime.now(UTC)
    for n in range(count):
        entry = LedgerEntry(
            call=new_call_key(),
            session_id="s-bench",
            task=f"t{n % 50}",
            phase=("plan", "build", "review")[n % 3],
            adapter="claude",
            model="claude-sonnet-4-5",
            started_at=now - timedelta(minutes=n % 200),
            ended_at=now,
            input_tokens=2000,
            output_tokens=300,
            cost_usd=0.01,
            cost_source="cli",
        )
        await ledger.opened(entry)


async def main(calls: int, rounds: int, history: int, as_json: bool) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        ledger_store = FileStateStore(root / "ledger")
        floor_store = FileStateStore(root / "floor")
        async with ledger_store, floor_store:
            await _history(ledger_store, history)
            gate = SpendGate(ledger_store, _config(root), "s-bench")
            await gate.load()
            usage = Usage(input_tokens=2000, output_tokens=300, cache_read_tokens=5000)
            template = LedgerEntry(
                call="x", session_id="s-bench", task="t1", phase="build", adapter="claude",
                started_at=datetime.now(UTC),
            )  # fmt: skip

            async def ledger_call(n: int) -> None:
                plan = CallPlan(task=f"t{n % 50}", phase="build", adapter="claude", model=None)
                ticket = await gate.open(plan)
                await gate.close(
                    ticket, usage=usage, outcome="succeeded", model="claude-sonnet-4-5",
                    account="claude: login ~/.claude/.credentials.json",
                )  # fmt: skip

            async def floor_call(n: int) -> None:
                key = new_call_key()
                data = template.model_copy(update={"call": key}).model_dump(mode="json")
                await floor_store.put_record("ledger", key, data, expected_version=0)
                await floor_store.put_record("ledger", key, data, expected_version=1)

            async def process_call(n: int) -> None:
                await run_command(["/bin/true"], cwd=root)

            sides: dict[str, Callable[[int], Awaitable[None]]] = {
                "ledger": ledger_call,
                "two writes": floor_call,
                "one process": process_call,
            }
            walls: dict[str, list[float]] = {name: [] for name in sides}
            cpus: dict[str, list[float]] = {name: [] for name in sides}
            for _ in range(rounds):
                for name, step in sides.items():
                    wall, cpu = await _timed(step, calls)
                    walls[name].append(wall)
                    cpus[name].append(cpu)
    wall = {name: statistics.median(values) for name, values in walls.items()}
    cpu = {name: statistics.median(values) for name, values in cpus.items()}
    if as_json:
        per_call = {n: {"wall_ms": wall[n] * 1000, "cpu_ms": cpu[n] * 1000} for n in sides}
        print(json.dumps({"calls": calls, "rounds": rounds, "per_call": per_call}, indent=2))
        return
    print(f"{calls} calls x {rounds} rounds, {history} calls in the ledger, {os.cpu_count()} CPUs")
    for name in sides:
        ms_wall, ms_cpu = wall[name] * 1000, cpu[name] * 1000
        print(f"  {name:12} wall {ms_wall:7.2f} ms/call   cpu {ms_cpu:7.2f} ms/call")
    for other in ("two writes", "one process"):
        print(
            f"ledger / {other}: wall {wall['ledger'] / wall[other]:.2f}x, "
            f"cpu {cpu['ledger'] / cpu[other]:.2f}x"
        )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--history", type=int, default=1000)
    parser.add_argument(
        "--quick", action="store_true", help="40 calls, 2 rounds, 200 in history (CI)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.calls, args.rounds, args.history = 40, 2, 200
    anyio.run(main, args.calls, args.rounds, args.history, args.json)
