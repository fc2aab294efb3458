"""What ``council web`` costs: the first page and one update's latency at 1,024 and 10,000
tasks, and the server's CPU while nothing happens.

For each size a run's store is made in a temporary repository (a session of N tasks, every
tenth running, the rest queued), and ``council web``'s server (``orchestrator.web.serve``) is
started on it as a process of its own (this file with ``--serve``). Measured from this process
over HTTP with the token:

- ``first page``: what a browser needs before it draws: ``/`` and ``/api/view`` (the run's
  totals and the first window of rows), median of ``--rounds``;
- ``event`` and ``update``: one task written to the store by this process, from the write's
  return to the server's server-sent event saying so (the store's watcher, the report rebuilt),
  and to the view read again after it, as the page does; medians, and the worst update, of
  ``--writes``;
- ``idle CPU``: the server's CPU time over ``--idle`` seconds with one event stream open and
  nothing written (every thread's, from ``/proc/<pid>/task/*/schedstat``), as a share of one
  core.

Targets (issue 49): the first page within 0.3 s at 1,024 tasks; idle CPU near zero.

    python bench/web_bench.py [--sizes 1024 10000] [--rounds 5] [--writes 5] [--idle 5]
    python bench/web_bench.py --quick      # 256 and 1,024 tasks, 2 rounds (CI)
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
import urllib.request
from pathlib import Path

import anyio

from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.protocol import TaskInit

SESSION = "s-web-bench"


async def make_run(repo: Path, tasks: int) -> None:
    async with FileStateStore.for_repo(repo) as store:
        ids = [f"t{i:05d}" for i in range(tasks)]
        phases = {"plan": {"name": "plan", "status": "completed"}, "build": {"name": "build"}}
        inits: list[TaskInit] = [{"task_id": task_id, "phases": phases} for task_id in ids]
        await store.create_session({}, [], session_id=SESSION, listed=ids)
        for start in range(0, tasks, 1000):
            await store.add_session_tasks(SESSION, inits[start : start + 1000])
        for task_id in ids[::10]:
            await store.update_task_state(
                task_id, {"status": TaskStatus.RUNNING, "current_phase": "build"}
            )


async def write(repo: Path, n: int) -> None:
    async with FileStateStore.for_repo(repo) as store:
        await store.update_task_state("t00001", {"attempt": n, "status": TaskStatus.RUNNING})


def serve(repo: Path) -> None:
    """The server on ``repo``'s store; prints its URL (``--serve``)."""
    from orchestrator.web.serve import serve_web

    council = repo / ".council"
    anyio.run(
        lambda: serve_web(
            None,
            lambda url: print(url, flush=True),
            state_dir=council / "state",
            events=council / "events.jsonl",
        )
    )


def cpu_seconds(pid: int) -> float:
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


class Server:
    def __init__(self, repo: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, __file__, "--serve", str(repo)], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        url = self.process.stdout.readline().strip()
        if not url.startswith("http://"):
            self.process.kill()
            raise SystemExit(f"the server did not start: {url!r}")
        self.base, self.token = url.split("/?")[0], url.split("token=")[1]

    def get(self, path: str) -> bytes:
        request = urllib.request.Request(
            self.base + path, headers={"authorization": f"token {self.token}"}
        )
        with urllib.request.urlopen(request, timeout=60) as answer:
            body: bytes = answer.read()
            return body

    def events(self):  # type: ignore[no-untyped-def]
        request = urllib.request.Request(
            self.base + "/events", headers={"authorization": f"token {self.token}"}
        )
        return urllib.request.urlopen(request, timeout=120)

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


def next_version(stream: object) -> int:
    while True:
        line = stream.readline().decode()  # type: ignore[attr-defined]
        if line.startswith("data: "):
            return int(line[6:])


def measure(size: int, rounds: int, writes: int, idle: float) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="web-bench-") as tmp:
        repo = Path(tmp)
        anyio.run(make_run, repo, size)
        server = Server(repo)
        try:
            firsts = []
            for _ in range(rounds):
                started = time.perf_counter()
                server.get("/")
                view = json.loads(server.get("/api/view"))
                firsts.append(time.perf_counter() - started)
            assert view["totals"]["tasks"] == size, view["totals"]
            stream = server.events()
            seen = next_version(stream)
            updates, events = [], []
            for n in range(1, writes + 1):
                anyio.run(write, repo, n)
                started = time.perf_counter()  # from the write's return, as watch_bench
                seen = next_version(stream)
                events.append(time.perf_counter() - started)
                json.loads(server.get("/api/view"))
                updates.append(time.perf_counter() - started)
            time.sleep(1.0)  # the last rebuild settled
            before = cpu_seconds(server.process.pid)
            time.sleep(idle)
            idle_cpu = (cpu_seconds(server.process.pid) - before) / idle
            stream.close()
        finally:
            server.stop()
    return {
        "first_page_s": statistics.median(firsts),
        "event_s": statistics.median(events),
        "update_s": statistics.median(updates),
        "update_worst_s": max(updates),
        "idle_cpu_share": idle_cpu,
        "version": seen,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1024, 10000])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--writes", type=int, default=5)
    parser.add_argument("--idle", type=float, default=5.0)
    parser.add_argument("--quick", action="store_true", help="256 and 1,024 tasks, 2 rounds (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.add_argument("--serve", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve is not None:
        serve(args.serve)
        return
    if args.quick:
        args.sizes, args.rounds, args.writes, args.idle = [256, 1024], 2, 2, 2.0
    figures = {}
    for size in args.sizes:
        found = measure(size, args.rounds, args.writes, args.idle)
        figures[str(size)] = found
        if not args.json:
            print(
                f"{size:6d} tasks  first page {found['first_page_s'] * 1e3:7.1f} ms   "
                f"event {found['event_s'] * 1e3:6.1f} ms   update {found['update_s'] * 1e3:7.1f} "
                f"ms (worst {found['update_worst_s'] * 1e3:.1f})   idle CPU "
                f"{found['idle_cpu_share'] * 100:.2f} % of a core",
                flush=True,
            )
    if args.json:
        print(json.dumps({"cpus": os.cpu_count(), "sizes": figures}, indent=2))


if __name__ == "__main__":
    main()
