"""What ``council status --watch`` costs with the store's watcher against the polling it
replaced, measured in one run: wake-up latency and CPU while idle.

A run's store is made in a temporary repository (a session of ``--tasks`` tasks, its
orchestrator this process, alive all along). For each way of watching, a process of its own
follows it the way ``status --watch`` does, printing a line each time its report shows a task
at a new version:

- ``watcher (inotify)``: today's loop (``status_watch._watch``'s parts: the store opened once,
  ``StateStore.watch``, ``_next_change``), woken by inotify on the event log's directory;
- ``watcher (stat)``: the same loop where inotify is missing (macOS, its limit reached): the
  log's size looked at on an interval growing from 20 ms to 0.25 s while nothing changes;
- ``polling (1 s)``: the loop before (``newest_report`` every second, opening the store each
  time).

Each process first sits idle ``--idle`` seconds while its CPU time is measured (every
thread's, from ``/proc/<pid>/task/*/schedstat`` in nanoseconds on Linux); then this process
writes one task ``--writes`` times, at random gaps so a poll's phase is random too, and each
wake-up latency is taken from the write's return to the watcher's line (both on
``CLOCK_MONOTONIC``, one clock for every process of the machine). Medians and the 95th
percentile are printed, and polling's cost as a ratio of the watcher's. A watcher's idle CPU
is its redraw every ``_RECHECK`` (5) seconds, for what no write tells (an orchestrator that
died); polling reads the whole report every second.

    python bench/watch_bench.py [--idle 10] [--writes 20] [--tasks 8]

``--quick`` (CI's check that it still runs) idles 0.5 s, settles 0.25 s and writes at a quarter
of the gaps: every way of watching still started, left idle and woken; its figures are not
measures.
"""

from __future__ import annotations

import argparse
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import anyio
import psutil

from orchestrator.models import TaskStatus
from orchestrator.process import procid
from orchestrator.run.reports.report import TaskReport
from orchestrator.run.stores import events_log
from orchestrator.scheduler.context import ORCHESTRATOR
from orchestrator.state import FileStateStore

MODES = {"inotify": "watcher (inotify)", "stat": "watcher (stat)", "poll": "polling (1 s)"}
SESSION = "s-bench"
TASK = "t0"  # the task written


def clock() -> float:
    return time.clock_gettime(time.CLOCK_MONOTONIC)


# -- the watching process -------------------------------------------------------------------


def follow(mode: str, repo: Path) -> None:
    """Follow the run in ``repo`` as ``mode`` does, printing ``<clock> <version>`` each time
    the written task's version moved; ``ready`` once it follows."""
    from orchestrator.cli.status import status_watch
    from orchestrator.cli.store_access import newest_report, report_reader
    from orchestrator.state.file.log import log_wake

    state, events = repo / ".council" / "state", events_log(repo)
    seen = -1  # the first report is printed, whatever it shows

    def show(version: int) -> None:
        nonlocal seen
        if version != seen:
            seen = version
            print(f"{clock()} {version}", flush=True)

    async def watcher() -> None:
        if mode == "stat":
            log_wake._LIBC = None  # as where inotify is missing
        async with report_reader(state, events) as reader, reader.store.watch() as changes:
            print("ready", flush=True)
            while True:
                drawn = time.monotonic()
                report, _ = await reader.newest()
                show(_version(report.tasks))
                await status_watch._next_change(changes, drawn)

    async def poller() -> None:
        print("ready", flush=True)
        while True:
            report, _ = await newest_report(state)
            show(_version(report.tasks))
            await anyio.sleep(1.0)  # the old status --watch

    anyio.run(poller if mode == "poll" else watcher)


def _version(tasks: list[TaskReport]) -> int:
    # A report has no versions: the written task's attempt number carries the count.
    return next((t.attempts for t in tasks if t.task_id == TASK), 0)


# -- the writing process (this one) ---------------------------------------------------------


async def make_run(repo: Path, tasks: int) -> None:
    async with FileStateStore.for_repo(repo) as store:
        ids = [f"t{i}" for i in range(tasks)]
        await store.create_session({}, ids, session_id=SESSION)
        metadata = {ORCHESTRATOR: procid.current().as_dict()}
        await store.update_session(SESSION, {"metadata": metadata})


async def write(store: FileStateStore, n: int) -> float:
    await store.update_task_state(TASK, {"attempt": n, "status": TaskStatus.RUNNING})
    return clock()


def cpu_seconds(pid: int) -> float:
    """CPU time of every thread of ``pid`` so far: the scheduler's own count in nanoseconds
    where Linux gives it (the clock-tick counts of ``cpu_times`` show an idle process as 0)."""
    tasks = Path(f"/proc/{pid}/task")
    if tasks.is_dir():
        total = 0
        for task in tasks.iterdir():
            try:
                total += int((task / "schedstat").read_text().split()[0])
            except (OSError, IndexError, ValueError):
                continue  # a thread that ended meanwhile
        return total / 1e9
    times = psutil.Process(pid).cpu_times()
    return float(times.user + times.system)


def measure(
    mode: str, repo: Path, idle: float, writes: int, pace: float = 1.0
) -> tuple[float, list[float]]:
    """CPU seconds per second while idle, and each wake-up latency, of one watching process
    (``pace`` scales the settling wait and the gaps between writes: 1 measures, less checks)."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--follow", mode, str(repo)],
        stdout=subprocess.PIPE,
        text=True,
    )
    assert child.stdout is not None
    try:
        while child.stdout.readline().strip() != "ready":
            pass
        first = child.stdout.readline()  # the first report, as it stands
        seen = int(first.split()[1])
        time.sleep(1.0 * pace)  # settled: no start-up work left
        before = cpu_seconds(child.pid)
        time.sleep(idle)
        cpu = (cpu_seconds(child.pid) - before) / idle
        latencies: list[float] = []

        async def write_all() -> None:
            async with FileStateStore.for_repo(repo) as store:
                for n in range(seen + 1, seen + writes + 1):
                    await anyio.sleep(random.uniform(0.3, 1.3) * pace)
                    written = await write(store, n)
                    line = await anyio.to_thread.run_sync(child.stdout.readline)  # type: ignore[union-attr]
                    woke, version = line.split()
                    assert int(version) == n, (line, n)
                    latencies.append(float(woke) - written)

        anyio.run(write_all)
        return cpu, latencies
    finally:
        child.kill()
        child.wait()


def main(idle: float, writes: int, tasks: int, as_json: bool, pace: float = 1.0) -> None:
    rows: dict[str, tuple[float, list[float]]] = {}
    with tempfile.TemporaryDirectory(prefix="council-watch-bench-") as tmp:
        repo = Path(tmp) / "repo"
        repo.mkdir()
        anyio.run(make_run, repo, tasks)
        for mode in MODES:
            rows[mode] = measure(mode, repo, idle, writes, pace)
    if as_json:
        figures = {
            mode: {"wake_median_ms": statistics.median(lat) * 1e3, "idle_cpu_ms_per_s": cpu * 1e3}
            for mode, (cpu, lat) in rows.items()
        }
        print(json.dumps({"tasks": tasks, "idle_s": idle, "writes": writes, **figures}, indent=2))
        return
    width = max(map(len, MODES.values()))
    gaps = f"{0.3 * pace:g}-{1.3 * pace:g} s"
    print(f"{tasks} tasks; idle {idle:g} s; {writes} writes at random gaps of {gaps}")
    print(f"{'':{width}s}  wake median   wake p95  CPU idle (ms/s)")
    for mode, (cpu, lat) in rows.items():
        p95 = statistics.quantiles(lat, n=20)[-1] if len(lat) > 1 else lat[0]
        print(
            f"{MODES[mode]:{width}s} {statistics.median(lat) * 1e3:9.1f} ms {p95 * 1e3:7.1f} ms "
            f"{cpu * 1e3:14.3f}"
        )
    poll_cpu, poll_lat = rows["poll"]
    for mode in ("inotify", "stat"):
        cpu, lat = rows[mode]
        cpu_ratio = f"{poll_cpu / cpu:.1f}x" if cpu > 0 else "inf (no CPU measured)"
        wake_ratio = statistics.median(poll_lat) / statistics.median(lat)
        print(
            f"polling / {MODES[mode]}: wake-up {wake_ratio:.0f}x later, CPU while idle {cpu_ratio}"
        )


if __name__ == "__main__":
    if len(sys.argv) == 4 and sys.argv[1] == "--follow":
        follow(sys.argv[2], Path(sys.argv[3]))
        sys.exit(0)
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--idle", type=float, default=10.0, help="seconds idle per watcher")
    parser.add_argument("--writes", type=int, default=20)
    parser.add_argument("--tasks", type=int, default=8, help="tasks in the session")
    parser.add_argument(
        "--quick",
        action="store_true",
        help="0.5 s idle, 3 writes at a quarter of the gaps, 3 tasks (CI)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    pace = 1.0
    if args.quick:  # every watcher and the poller still started, idle, woken 3 times
        args.idle, args.writes, args.tasks, pace = 0.5, 3, 3, 0.25
    main(args.idle, args.writes, args.tasks, args.json, pace)
