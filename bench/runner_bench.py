"""The CLI runner's cost to run ``/bin/true``, as a ratio to bare ``anyio.run_process``.

Both sides spawn the same binary in the same run; the floor is ``anyio.run_process`` (pipes for
stdout and stderr, wait for exit). ``run_cli`` adds what every real CLI run needs: the adapter
building the command, the allow-listed environment and private HOME, its own process group,
the log file, both streams read line by line, the group killed after exit, and the outcome
classified. Rounds alternate so machine noise hits both sides alike; ratios compare medians.
Target: at most 1.2x, sequential and at concurrency 16, however many processes the machine
runs: the bench makes itself a child subreaper first, as the ``council`` command does (then
strays are looked for in the orchestrator's own process tree), and measures again with
``--extra`` sleeping processes added to the machine, in the same run. Each run gets a worktree
of its own, as every session has. The last line is the cost of creating one log file alone in
the same directory, the part of the overhead that depends on the disk.

    python bench/runner_bench.py [--runs 200] [--rounds 5] [--concurrency 16] [--extra 300]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TextIO

import anyio

from adapters.command import CommandAdapter
from orchestrator.adapter import AdapterRequest
from orchestrator.process.output import LOG_LIMIT, LogSink, log_name
from orchestrator.process.subreaper import become_subreaper
from orchestrator.runner.cli_run import run_cli

TRUE = "/bin/true"


async def timed(runs: int, concurrency: int, once: Callable[[], Awaitable[object]]) -> float:
    """Seconds per run: ``runs`` calls of ``once``, at most ``concurrency`` at a time."""
    limiter = anyio.CapacityLimiter(concurrency)

    async def one() -> None:
        async with limiter:
            await once()

    started = time.perf_counter()
    async with anyio.create_task_group() as tasks:
        for _ in range(runs):
            tasks.start_soon(one)
    return (time.perf_counter() - started) / runs


def start_elsewhere(count: int) -> list[int]:
    """``count`` sleeping processes outside this one's tree (their shell exits at once, so
    init adopts them): other users' work on the machine. Started before this process becomes
    a subreaper, which would adopt them."""
    if not count:
        return []
    script = f"for i in $(seq {count}); do sleep 600 </dev/null >/dev/null 2>&1 & echo $!; done"
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, check=True)
    return [int(pid) for pid in done.stdout.split()]


def stop_elsewhere(pids: list[int]) -> None:
    for pid in pids:
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)


async def main(runs: int, rounds: int, concurrency: int, extra: int, as_json: bool) -> None:
    elsewhere = start_elsewhere(extra)
    figures: dict[str, dict[str, float]] = {}
    out = sys.stderr if as_json else sys.stdout  # the figures' JSON alone on stdout
    try:
        await measure(runs, rounds, concurrency, extra, elsewhere, figures, out)
    finally:
        stop_elsewhere(elsewhere)
    if as_json:
        print(json.dumps({"runs": runs, "rounds": rounds, "ms": figures}, indent=2))


async def measure(
    runs: int,
    rounds: int,
    concurrency: int,
    extra: int,
    elsewhere: list[int],
    figures: dict[str, dict[str, float]],
    out: TextIO,
) -> None:
    subreaper = become_subreaper()
    said = "yes" if subreaper else "no (strays: every process is read)"
    print(f"child subreaper: {said}", file=out)
    # Beside the checkout, like a repository's .council/logs (and not /tmp, which can be
    # another file system with very different file-creation costs).
    with tempfile.TemporaryDirectory(prefix="council-bench-", dir=Path.cwd()) as tmp:
        root = Path(tmp)
        adapter = CommandAdapter({"binary": TRUE, "args": ["{prompt}"]})
        free: list[Path] = []  # a worktree per run in flight, as sessions have
        for n in range(concurrency):
            (root / f"wt{n}").mkdir()
            free.append(root / f"wt{n}")

        async def bare() -> None:
            await anyio.run_process([TRUE, "hello"], check=False)

        async def runner() -> None:
            workdir = free.pop()
            try:
                request = AdapterRequest(
                    prompt="hello", workdir=workdir, home=workdir / ".home", task_id="bench"
                )
                run = await run_cli(adapter, request, log_dir=root / "logs")
            finally:
                free.append(workdir)
            assert run.ok, run.outcome
            assert not run.survivors, run.survivors

        for _ in range(concurrency):  # creates each private home once, as a first run does
            await runner()
        logs = root / "logs"

        async def log_alone() -> None:
            sink = LogSink(logs / log_name("bench", "alone"), LOG_LIMIT, [TRUE], root)
            sink.create()
            sink.close("done")

        async def compare(label: str, width: int) -> None:
            floors: list[float] = []
            costs: list[float] = []
            for _ in range(rounds):
                floors.append(await timed(runs, width, bare))
                costs.append(await timed(runs, width, runner))
            floor, cost = statistics.median(floors), statistics.median(costs)
            figures[label] = {"run_process": floor * 1e3, "run_cli": cost * 1e3}
            print(
                f"{label:<28} anyio.run_process {floor * 1e3:6.3f} ms   "
                f"run_cli {cost * 1e3:6.3f} ms   ratio {cost / floor:4.2f}x",
                file=out,
            )

        widths = (("sequential", 1), (f"concurrency {concurrency}", concurrency))
        if elsewhere:
            for label, width in widths:
                await compare(f"{label}, +{extra} processes", width)
            stop_elsewhere(elsewhere)
        for label, width in widths:
            await compare(label, width)
        # Every run creates its own log file; on a file system that others keep syncing, that
        # create alone can cost as much as a spawn. Shown so the ratio can be read honestly.
        create = statistics.median([await timed(runs, 1, log_alone) for _ in range(rounds)])
        figures["log file alone"] = {"create_header_close": create * 1e3}
        print(f"{'log file alone':<28} create + header + close {create * 1e3:6.3f} ms", file=out)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--extra", type=int, default=300, help="sleeping processes to add")
    parser.add_argument(
        "--quick", action="store_true", help="20 runs, 2 rounds, 4 at once, 30 extra (CI)"
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    options = parser.parse_args()
    if options.quick:
        options.runs, options.rounds, options.concurrency, options.extra = 20, 2, 4, 30
    anyio.run(main, options.runs, options.rounds, options.concurrency, options.extra, options.json)
