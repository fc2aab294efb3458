"""The process scans (``orchestrator.process``) as a ratio to starting one process.

Every scan looks at every process of the machine, so its cost grows with what else runs. The
bench starts ``--extra`` sleeping processes (one in a directory of its own, holding a file
open there, like a CLI's daemon in its worktree) on top of what already runs, then times,
median of ``--rounds``:

- ``sweep``: ``find_strays`` for a CLI that has exited (mark and worktree looked for), what
  runs after every CLI's end;
- ``kill``: the same while the CLI (here a sleeping process) lives: ancestry walked too;
- ``living``: ``procid.living()``, the table ``stop_orphans`` reads;
- ``inside``: ``processes_inside(worktree)``, before a worktree is removed;
- ``lock``: ``lock_holders`` of an ``index.lock``, when git left one behind;

against one ``fork`` + ``exec`` + ``wait`` of ``true`` (the cost of the cheapest git call).

    python bench/process_scan_bench.py [--extra 50] [--rounds 20]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from orchestrator.process import procid
from orchestrator.process.path_users import lock_holders, processes_inside
from orchestrator.process.tree import Family, find_strays

_HOLDER = "import sys, time; f = open(sys.argv[1], 'w'); time.sleep(600)"


def timed(call: Callable[[], object], rounds: int) -> float:
    """Median wall time of ``call`` in milliseconds."""
    samples = []
    for _ in range(rounds):
        began = time.perf_counter()
        call()
        samples.append((time.perf_counter() - began) * 1000)
    return statistics.median(samples)


def main(extra: int, rounds: int, as_json: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="council-scan-") as tmp:
        worktree = Path(tmp) / "worktree"
        worktree.mkdir()
        mark, since = Family.new_mark()
        env = {**os.environ, "COUNCIL_RUN_MARK": mark}
        sleepers = [
            subprocess.Popen(["sleep", "600"], start_new_session=True) for _ in range(extra)
        ]
        holder = subprocess.Popen(
            [sys.executable, "-c", _HOLDER, str(worktree / "held.txt")],
            cwd=worktree,
            env=env,
            start_new_session=True,
        )
        cli = sleepers[0]
        try:
            time.sleep(0.5)  # the holder has opened its file
            total = len(procid.living())
            family = Family(cli.pid, mark, since, (str(worktree),))
            lock = worktree / "index.lock"
            lock.write_text("")
            floor = timed(lambda: subprocess.run(["true"], check=True), rounds)
            figures: dict[str, object] = {"processes": total, "start_true_ms": floor}
            if not as_json:
                print(f"process scans: {total} processes on the machine, median of {rounds} rounds")
                print(f"  {'start true':12} {floor:7.2f} ms  1.00x")
            scans: dict[str, Callable[[], object]] = {
                "sweep": lambda: find_strays(family, leader_alive=False),
                "kill": lambda: find_strays(family, leader_alive=True),
                "living": procid.living,
                "inside": lambda: processes_inside(worktree),
                "lock": lambda: lock_holders(lock, [worktree]),
            }
            for name, scan in scans.items():
                cost = timed(scan, rounds)
                figures[f"{name}_ms"] = cost
                if not as_json:
                    print(f"  {name:12} {cost:7.2f} ms  {cost / floor:5.2f}x")
            found = find_strays(family, leader_alive=False)
            figures["strays_found"] = len(found)
            if as_json:
                print(json.dumps(figures, indent=2))
            else:
                print(f"  (the sweep found {len(found)} stray(s); 1 expected: the file holder)")
        finally:
            for process in [*sleepers, holder]:
                process.kill()
                process.wait()


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--extra", type=int, default=50, help="sleeping processes to add")
    parser.add_argument("--rounds", type=int, default=20, help="timed calls of each scan")
    parser.add_argument("--quick", action="store_true", help="10 extra processes, 5 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.extra, args.rounds = 10, 5
    main(args.extra, args.rounds, args.json)
