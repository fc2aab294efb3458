"""Every bench in ``bench/``, run once in its quick mode: the one list of the benches and of the
helper modules they share, which CI (``.ci/run``) runs and ``tests/project/test_bench_catalog.py``
checks against the directory, so a new bench cannot be left out.

A quick mode does the same kind of work as the full bench (the same sides compared, fewer rounds
and smaller sizes) so a bench that no longer runs is found; its figures are printed, never
judged. A bench that needs a part of the machine (PostgreSQL's server binaries, bubblewrap)
fails without it: under ``CI=true`` that part is installed, elsewhere ``--skip-missing`` leaves
such a bench out and says so (never counted as passed).

    .venv/bin/python bench/quick_all.py [--only NAME ...] [--skip-missing] [--jobs N]

``--jobs N`` runs N benches at once (CI runs two beside lint and types: the benches wait on
processes, servers and sleeps for about a third of their wall time); each bench's output is
printed whole when it ends, so two benches' lines never mix. Their figures are then taken on a
busier machine, which a quick mode may do: they are printed, not judged.
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

BENCH = Path(__file__).resolve().parent
_printing = threading.Lock()  # one bench's output printed at a time (``--jobs``)

# Each bench: the parts of the machine it needs beyond git and Python ("postgres", "bwrap").
BENCHES: dict[str, tuple[str, ...]] = {
    "claim_bench.py": ("postgres",),
    "coordination_bench.py": (),
    "forge_requests_bench.py": (),
    "fund_bench.py": (),
    "history_space.py": ("postgres",),
    "ledger_bench.py": (),
    "lock_bench.py": (),
    "log_mask_bench.py": (),
    "merge_bench.py": (),
    "notify_latency.py": ("postgres",),
    "overhead_bench.py": (),
    "process_scan_bench.py": (),
    "push_gate_bench.py": (),
    "radar_bench.py": (),
    "runner_bench.py": (),
    "sandbox_bench.py": ("bwrap",),
    "secret_detect_bench.py": (),
    "secret_scan_bench.py": (),
    "serve_idle_bench.py": (),
    "services_bench.py": ("postgres",),
    "start_bench.py": (),
    "startup_bench.py": (),
    "state_bench.py": (),
    "summary_bench.py": (),
    "team_overhead.py": ("postgres",),
    "team_speedup.py": ("postgres",),
    "train_bench.py": (),
    "watch_bench.py": (),
    "web_bench.py": (),
    "worktree_bench.py": (),
}

# Benches without ``--json`` (every other bench prints its figures as JSON with it): why.
TEXT_ONLY: dict[str, str] = {
    "coordination_bench.py": "it runs worktree, lock and merge benches in turn: theirs have --json",
    "start_bench.py": "start-up marks and memory runs as text; not yet given as JSON",
}

# Modules the benches import or run as a process, not benches themselves: why each is here.
HELPERS: dict[str, str] = {
    "counted_council.py": "the council command with counting wrappers, run by overhead benches",
    "overhead_counts.py": "the counting wrappers counted_council.py installs",
    "overhead_floor.py": "the bare script overhead_bench.py compares council run against",
    "proc_measure.py": "CPU and wall of a child process, for the process benches",
    "quick_all.py": "this list and its runner",
    "team_common.py": "the PostgreSQL cluster and repositories of the team benches",
}


def missing(part: str) -> str | None:
    """Why ``part`` is not on this machine, or None when it is."""
    if part == "bwrap":
        return None if shutil.which("bwrap") else "bubblewrap (bwrap) is not on PATH"
    if part == "postgres":
        from orchestrator.errors import RunError
        from orchestrator.state.postgres.cluster import find_server_binaries

        try:
            find_server_binaries()
        except RunError as error:
            return f"PostgreSQL server binaries: {error}"
        return None
    raise ValueError(f"quick_all.py: unknown part {part!r} in BENCHES")


def run(names: list[str], skip_missing: bool, jobs: int = 1) -> int:
    in_ci = os.environ.get("CI", "").lower() == "true"
    rows: dict[str, tuple[str, float]] = {}
    runnable: list[str] = []
    for name in names:
        reasons = [r for r in (missing(p) for p in BENCHES[name]) if r is not None]
        if reasons and skip_missing and not in_ci:
            print(f"== {name}: not run ({'; '.join(reasons)})", flush=True)
            rows[name] = ("NOT RUN", 0.0)
        else:
            runnable.append(name)
    if jobs <= 1:
        for name in runnable:
            print(f"== {name} --quick", flush=True)
            rows[name] = _one(name, capture=False)
    else:
        with ThreadPoolExecutor(max_workers=jobs) as pool:
            for name, row in zip(runnable, pool.map(_captured, runnable), strict=True):
                rows[name] = row
    failed = [name for name in names if rows[name][0].startswith("FAILED")]
    print("\n== quick benches")
    for name in names:
        status, wall = rows[name]
        print(f"  {name:28} {wall:6.1f} s  {status}")
    if failed:
        print(f"{len(failed)} bench(es) failed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


def _one(name: str, *, capture: bool) -> tuple[str, float]:
    """Run one bench's quick mode: its status and wall seconds (its output, when
    ``capture``, printed whole at its end under its name)."""
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, str(BENCH / name), "--quick"],
        check=False,
        stdout=subprocess.PIPE if capture else None,
        stderr=subprocess.STDOUT if capture else None,
        stdin=subprocess.DEVNULL,
    )
    wall = time.perf_counter() - started
    status = "ok" if done.returncode == 0 else f"FAILED (exit {done.returncode})"
    if capture:
        output = done.stdout.decode(errors="replace")
        with _printing:
            print(f"== {name} --quick ({wall:.1f} s, {status})\n{output}", end="", flush=True)
    return status, wall


def _captured(name: str) -> tuple[str, float]:
    return _one(name, capture=True)


def main() -> None:
    # Started in the background by a non-interactive shell (.ci/run runs the benches as a job
    # beside lint and types), this process and every process it starts would ignore SIGINT;
    # benches stop what they start with it (forge_requests_bench's `council resume`, which
    # then never ended: 120 s and a failure). Python's own handler here gives every bench the
    # default disposition back.
    signal.signal(signal.SIGINT, signal.default_int_handler)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", metavar="NAME", help="these benches (file names)")
    parser.add_argument(
        "--skip-missing",
        action="store_true",
        help="leave out a bench whose part is missing (never under CI=true)",
    )
    parser.add_argument(
        "--jobs",
        type=int,
        default=1,
        metavar="N",
        help="benches run at once (default 1: one at a time, its output as it comes)",
    )
    args = parser.parse_args()
    if args.jobs < 1:
        parser.error(f"--jobs must be 1 or more, not {args.jobs}")
    names = list(args.only) if args.only else sorted(BENCHES)
    unknown = [n for n in names if n not in BENCHES]
    if unknown:
        parser.error(f"not a bench in bench/quick_all.py's BENCHES: {', '.join(unknown)}")
    sys.exit(run(names, args.skip_missing, args.jobs))


if __name__ == "__main__":
    main()
