"""What the team budget's reservation costs a call (``spend.reservations``): a gate's open and
close of 200 calls on the file store, with no budget (no fund write) and with a run budget
(one compare-and-set at open, one at close). Usage: ``python bench/fund_bench.py``."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.spend.gate import CallPlan, SpendGate
from orchestrator.state.file.store import FileStateStore

CALLS = 200


async def per_call(budgets: dict[str, Any]) -> float:
    with tempfile.TemporaryDirectory() as directory:
        repo = Path(directory)
        config = RunConfig.model_validate(
            {
                "repo": str(repo),
                "adapters": {"claude": {}},
                "default_adapter": "claude",
                "tasks": [{"id": "t1", "prompt": "x"}],
                "budgets": budgets,
            }
        )
        async with FileStateStore.for_repo(repo) as store:
            gate = SpendGate(store, config, "s1")
            await gate.load()
            started = time.perf_counter()
            for n in range(CALLS):
                ticket = await gate.open(CallPlan(task=f"t{n}", phase="build", adapter="claude"))
                await gate.close(ticket, usage=Usage(cost_usd=0.001), outcome="succeeded")
            return (time.perf_counter() - started) / CALLS


async def main() -> None:
    plain = await per_call({})
    funded = await per_call({"run": {"usd": 1000.0}, "estimate": {"usd": 0.01}})
    print(f"open+close per call, no budget:  {plain * 1000:.2f} ms")
    print(f"open+close per call, run budget: {funded * 1000:.2f} ms (fund reserve + settle)")


if __name__ == "__main__":
    anyio.run(main)
