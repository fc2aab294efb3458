"""Update throughput of FileStateStore as a ratio to the bare durable atomic write under it.

Both sides write the same bytes to the same kind of directory on the same disk in the same
run: the floor is ``durable_write`` alone (temp file, write, fsync, replace, fsync dir); the
store adds the record lock, reading and checking the current version, validation, the history
link, pruning and the event line. Rounds alternate so disk noise hits both sides alike; the
ratio is taken from the medians. Target: at most 2.0x.

    python bench/state_bench.py [--updates 300] [--rounds 5]
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from orchestrator.state import FileStateStore
from orchestrator.state.file.fsops import FileOps, durable_write
from orchestrator.state.file.record_files.codec import encode


def floor_round(directory: Path, payload: bytes, updates: int) -> float:
    ops = FileOps()
    ops.confine(directory)
    target = directory / "current.json"
    started = time.perf_counter()
    for _ in range(updates):
        durable_write(target, payload, ops)
    return (time.perf_counter() - started) / updates


async def store_round(store: FileStateStore, task_id: str, updates: int) -> float:
    started = time.perf_counter()
    for n in range(updates):
        await store.update_task_state(task_id, {"priority": n})
    return (time.perf_counter() - started) / updates


async def main(updates: int, rounds: int, as_json: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="council-bench-", dir=Path.cwd()) as tmp:
        root = Path(tmp)
        floor_dir = root / "floor"
        floor_dir.mkdir()
        async with FileStateStore(root / "state") as store:
            sample = await store.update_task_state(
                "bench", {"metadata": {"note": "x" * 400}, "branch": "council/bench/1"}
            )
            payload = encode(sample.model_dump_json().encode())
            floors: list[float] = []
            stores: list[float] = []
            for _ in range(rounds):
                floors.append(floor_round(floor_dir, payload, updates))
                stores.append(await store_round(store, "bench", updates))
            floor = statistics.median(floors)
            cost = statistics.median(stores)
    if as_json:
        figures = {"record_bytes": len(payload), "floor_ms": floor * 1e3, "store_ms": cost * 1e3}
        print(json.dumps({**figures, "ratio": cost / floor}, indent=2))
        return
    print(f"record size                 {len(payload)} bytes")
    print(f"bare durable atomic write   {floor * 1e3:.3f} ms  ({1 / floor:,.0f}/s)")
    print(f"FileStateStore update       {cost * 1e3:.3f} ms  ({1 / cost:,.0f}/s)")
    print(f"ratio store/floor           {cost / floor:.2f}x  (target <= 2.00x)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--updates", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="50 updates, 2 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.updates, args.rounds = 50, 2
    anyio.run(main, args.updates, args.rounds, args.json)
