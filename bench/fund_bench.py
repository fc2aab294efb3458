"""What the team budget's reservation costs a call (``spend.reservations``): a gate's open and
close of calls on the file store, with a run budget, in a team's gate (one compare-and-set in the
fund record at open, one at close; the holder's lease) against a gate of one process alone (the
reservation in memory), rounds alternating, wall and CPU per call, and their ratio. No figure is
asserted anywhere; ``--json`` prints them for a script.

    python bench/fund_bench.py [--calls 200] [--rounds 3] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.spend.gate import CallPlan, SpendGate
from orchestrator.state.file.store import FileStateStore

BUDGETS = {"run": {"usd": 1000.0}, "estimate": {"usd": 0.01}}


async def per_call(calls: int, *, team: bool) -> tuple[float, float]:
    """(wall, CPU) seconds per open and close of a call."""
    with tempfile.TemporaryDirectory() as directory:
        repo = Path(directory)
        config = RunConfig.model_validate(
            {
                "repo": str(repo),
                "adapters": {"claude": {}},
                "default_adapter": "claude",
                "tasks": [{"id": "t1", "prompt": "x"}],
                "budgets": BUDGETS,
            }
        )
        who = {"pid": os.getpid(), "host": "bench", "started": ""} if team else None
        async with FileStateStore.for_repo(repo) as store:
            gate = SpendGate(store, config, "s1", who=who)
            await gate.load()
            wall, cpu = time.perf_counter(), time.process_time()
            for n in range(calls):
                ticket = await gate.open(CallPlan(task=f"t{n}", phase="build", adapter="claude"))
                await gate.close(ticket, usage=Usage(cost_usd=0.001), outcome="succeeded")
            return (
                (time.perf_counter() - wall) / calls,
                (time.process_time() - cpu) / calls,
            )


async def measure(calls: int, rounds: int) -> dict[str, Any]:
    alone: list[tuple[float, float]] = []
    team: list[tuple[float, float]] = []
    for _ in range(rounds):  # alternating, so a load that comes and goes hits both
        alone.append(await per_call(calls, team=False))
        team.append(await per_call(calls, team=True))
    best = {
        "alone_wall_ms": min(w for w, _ in alone) * 1000,
        "alone_cpu_ms": min(c for _, c in alone) * 1000,
        "team_wall_ms": min(w for w, _ in team) * 1000,
        "team_cpu_ms": min(c for _, c in team) * 1000,
    }
    best["wall_ratio"] = best["team_wall_ms"] / best["alone_wall_ms"]
    best["cpu_ratio"] = best["team_cpu_ms"] / best["alone_cpu_ms"]
    return {"calls": calls, "rounds": rounds, **best}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="20 calls, 1 round (CI)")
    parser.add_argument("--json", action="store_true", help="the figures as JSON")
    args = parser.parse_args()
    calls, rounds = (20, 1) if args.quick else (args.calls, args.rounds)
    found = anyio.run(measure, calls, rounds)
    if args.json:
        print(json.dumps(found))
        return
    print(f"{calls} calls x {rounds} rounds, best round, per call open + close:")
    print(
        f"  one process (reserved in memory): {found['alone_wall_ms']:.2f} ms wall, "
        f"{found['alone_cpu_ms']:.2f} ms CPU"
    )
    print(
        f"  a team's gate (fund in the store): {found['team_wall_ms']:.2f} ms wall, "
        f"{found['team_cpu_ms']:.2f} ms CPU"
    )
    print(f"  ratio team / alone: {found['wall_ratio']:.2f}x wall, {found['cpu_ratio']:.2f}x CPU")


if __name__ == "__main__":
    main()
