"""How fast a run of many tasks starts, and what a task costs in memory once it has ended.

**Start-up** (``--tasks``, 10,000 by default): ``council run`` of a config of that many
one-phase tasks on the offline scripted CLI, in a fresh sample repository, watched from
outside while it starts: the seconds from the command's start until

- the session is recorded (its record in the state store);
- every task is recorded (a record per task);
- the first task is dispatched (its ``task.dispatched`` event in the event log);

then one SIGINT, and the seconds until the command says it stops (its ``stopping:`` line,
read from its stderr as it is written) and until it has exited (its sessions commit their work
first). ``council status`` is timed once while the run starts, and what it said is printed.

**Memory** (``--sizes``, 64 and 1,024 by default): a whole run of each size in a process of
its own (``Council(config).run()``, one build phase on the scripted CLI, no delay; the C
allocator kept to two arenas first, as the ``council`` command does), its
resident set size (``VmRSS``) measured after the run, with the store still open; the cost per
task is the growth from the smallest size to the largest, per task more.

Wall times depend on the machine's load (``uptime`` is printed beside them); nothing here is
asserted.

    python bench/start_bench.py [--tasks 10000] [--sizes 64 1024] [--skip-memory] [--patience 300]

A figure not reached within ``--patience`` seconds prints as ``-``. To compare with another
version, run this script with ``PYTHONPATH`` pointing at that version's checkout.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}


def council_argv() -> list[str]:
    script = Path(sys.executable).parent / "council"
    return [str(script)] if script.exists() else [sys.executable, "-m", "orchestrator"]


def write_config(where: Path, tasks: int, capacity: int) -> Path:
    lines = [
        "repo: ./repo",
        "sample_repo: true",
        "base_branch: main",
        f"capacity: {{sessions: {capacity}}}",
        "adapters: {a: {type: scripted, options: {persona: quick, delay: 0}}}",
        "default_adapter: a",
        "workflow: {phases: [{name: build}]}",
        "tasks:",
    ]
    for n in range(tasks):
        lines.append(f'  - {{id: t{n:05d}, prompt: "WRITE notes/n{n:05d}.txt note {n}"}}')
    config = where / "big.yaml"
    config.write_text("\n".join(lines) + "\n")
    return config


def recorded_tasks(state: Path) -> int:
    tasks = state / "tasks"
    return sum(1 for _ in tasks.glob("*/current.json")) if tasks.is_dir() else 0


def session_recorded(state: Path) -> bool:
    return any((state / "sessions").glob("*/current.json"))


def dispatched(events: Path, seen: list[int]) -> bool:
    """A ``task.dispatched`` event in the log since byte ``seen[0]`` (which moves on)."""
    try:
        with events.open("rb") as handle:
            handle.seek(seen[0])
            chunk = handle.read()
    except FileNotFoundError:
        return False
    complete = chunk.rfind(b"\n") + 1
    seen[0] += complete
    return b'"task.dispatched"' in chunk[:complete]


def start_up(tasks: int, capacity: int, patience: float) -> list[str]:
    """Prints the figures; returns what was not reached within ``patience``."""
    with tempfile.TemporaryDirectory(prefix="start-bench-") as tmp:
        where = Path(tmp)
        config = write_config(where, tasks, capacity)
        state, events = where / "repo" / ".council" / "state", where / "repo" / ".council"
        marks: dict[str, float] = {}
        status_said = ""
        started = time.perf_counter()
        process = subprocess.Popen(
            [*council_argv(), "run", str(config), "--json"],
            cwd=where,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            env=ENV,
        )
        said: list[tuple[float, str]] = []  # (when, line) of the command's stderr

        def read_stderr() -> None:
            assert process.stderr is not None
            for raw in process.stderr:
                said.append((time.perf_counter(), raw.decode(errors="replace")))

        reader = threading.Thread(target=read_stderr, daemon=True)
        reader.start()
        seen = [0]
        try:
            while process.poll() is None and time.perf_counter() - started < patience:
                now = time.perf_counter() - started
                if "session" not in marks and session_recorded(state):
                    marks["session"] = now
                if "session" in marks and "all" not in marks and recorded_tasks(state) >= tasks:
                    marks["all"] = now
                if "dispatch" not in marks and dispatched(events / "events.jsonl", seen):
                    marks["dispatch"] = now
                if "session" in marks and not status_said:
                    before = time.perf_counter()
                    looked = subprocess.run(
                        [*council_argv(), "status", str(config)],
                        cwd=where,
                        capture_output=True,
                        text=True,
                        env=ENV,
                        check=False,
                    )
                    took = time.perf_counter() - before
                    head = (looked.stdout or looked.stderr).splitlines()[:1]
                    status_said = f"{took:.2f} s, exit {looked.returncode}: {' '.join(head)}"
                if {"all", "dispatch"} <= marks.keys():
                    break
                time.sleep(0.05)
            signalled = time.perf_counter()
            process.send_signal(signal.SIGINT)
            process.wait(timeout=300)
            stopped = time.perf_counter() - signalled
            reader.join(timeout=10)
            acknowledged = next(
                (when - signalled for when, line in said if "stopping" in line), None
            )
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        print(f"== start-up of {tasks:,} tasks (capacity {capacity}; load {load()})")
        for key, label in (
            ("session", "session recorded"),
            ("all", f"all {tasks:,} tasks recorded"),
            ("dispatch", "first task dispatched"),
        ):
            value = marks.get(key)
            print(f"  {label:28} {'-' if value is None else f'{value:6.2f} s'}")
        heard = "-" if acknowledged is None else f"{acknowledged:6.2f} s"
        print(f"  {'SIGINT to stopping said':28} {heard}")
        print(f"  {'SIGINT to exit':28} {stopped:6.2f} s (exit {process.returncode})")
        print(f"  {'council status meanwhile':28} {status_said or '-'}")
        missing = [key for key in ("session", "all", "dispatch") if marks.get(key) is None]
        return missing + ([] if acknowledged is not None else ["stopping said"])


MEMORY_RUN = """
import anyio, json, sys
from pathlib import Path
from orchestrator.config.run import RunConfig
from orchestrator.council import Council

Council.limit_arenas()  # as the council command does first thing

def rss_kib() -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0

async def main(repo: str, tasks: int, capacity: int) -> None:
    config = RunConfig.model_validate({
        "repo": repo, "sample_repo": True, "base_branch": "main",
        "adapters": {"a": {"type": "scripted", "options": {"persona": "quick", "delay": 0}}},
        "default_adapter": "a", "capacity": {"sessions": capacity},
        "workflow": {"phases": [{"name": "build"}]},
        "tasks": [{"id": f"t{n:05d}", "prompt": f"WRITE notes/n{n:05d}.txt note {n}"}
                  for n in range(tasks)],
    })
    async with Council(config) as council:
        report = await council.run()
        print(json.dumps({"rss_kib": rss_kib(), "done": report.totals.done}))

anyio.run(main, sys.argv[1], int(sys.argv[2]), int(sys.argv[3]))
"""


def memory(sizes: list[int], capacity: int) -> list[int]:
    """Prints the figures; returns the sizes whose run failed."""
    measured: dict[int, int] = {}
    failed: list[int] = []
    print(f"\n== memory after a whole run (capacity {capacity}; load {load()})")
    for size in sizes:
        with tempfile.TemporaryDirectory(prefix="start-bench-mem-") as tmp:
            started = time.perf_counter()
            done = subprocess.run(
                [
                    sys.executable,
                    "-c",
                    MEMORY_RUN,
                    str(Path(tmp) / "repo"),
                    str(size),
                    str(capacity),
                ],
                capture_output=True,
                text=True,
                env=ENV,
                check=False,
            )
            took = time.perf_counter() - started
        if done.returncode != 0:
            print(f"  {size:6,} tasks: failed ({done.returncode}): {done.stderr[-500:]}")
            failed.append(size)
            continue
        result = json.loads(done.stdout.strip().splitlines()[-1])
        measured[size] = int(result["rss_kib"])
        print(
            f"  {size:6,} tasks: RSS {measured[size] / 1024:7.1f} MiB "
            f"({result['done']} done, {took:.0f} s)"
        )
    if len(measured) >= 2:
        small, large = min(measured), max(measured)
        per_task = (measured[large] - measured[small]) / (large - small)
        print(f"  per task from {small:,} to {large:,} tasks: {per_task:.1f} KiB")
    return failed


def load() -> str:
    return " ".join(f"{x:.1f}" for x in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=10_000, help="tasks of the start-up run")
    parser.add_argument("--capacity", type=int, default=4, help="tasks running at once")
    parser.add_argument("--sizes", type=int, nargs="+", default=[64, 1024], help="memory runs")
    parser.add_argument("--skip-memory", action="store_true", help="only the start-up")
    parser.add_argument("--skip-start", action="store_true", help="only the memory")
    parser.add_argument(
        "--patience", type=float, default=300, help="seconds the start-up is watched at most"
    )
    parser.add_argument(
        "--quick", action="store_true", help="start-up of 200 tasks, memory of 4 and 16 (CI)"
    )
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.sizes, args.patience = 200, [4, 16], 120.0
    unreached = [] if args.skip_start else start_up(args.tasks, args.capacity, args.patience)
    failed = [] if args.skip_memory else memory(sorted(args.sizes), args.capacity)
    if unreached or failed:
        sys.exit(
            f"start_bench: not reached within {args.patience:g} s: {unreached or 'none'}; "
            f"memory runs failed: {failed or 'none'}"
        )


if __name__ == "__main__":
    main()
