"""How soon one workstation hears another's task write: LISTEN/NOTIFY against the polling
fallback.

Two ``PostgresStateStore`` instances on one database stand for two workstations. Store B's
scheduler view (``TaskView``) subscribes to B and wakes a stand-in scheduler through its
``on_remote`` hook. Store A then updates one task of the session ``--writes`` times, one at a
time, and for each write the bench measures, on one clock (one process):

- write to wake: from just before A's ``update_task_state`` until B's view asked to be woken
  (the transaction, its commit, the notice, B's listener and the view);
- commit to wake: from A's call returning (committed) until the wake.

The polling fallback (the view's full read every ``REFRESH_EVERY`` seconds) hears a write on
average ``REFRESH_EVERY / 2`` after it, plus up to a scheduler tick.

    python bench/notify_latency.py [--writes 200]

With ``COUNCIL_DATABASE_URL`` set it uses that database (leaving a session ``bench-notify-*``
there); otherwise it starts a throwaway ``LocalCluster`` in a temporary directory.
"""

from __future__ import annotations

import argparse
import json
import os
import secrets
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import anyio

from orchestrator.models import TaskStatus
from orchestrator.scheduler.view import REFRESH_EVERY, TaskView
from orchestrator.state.postgres.cluster import LocalCluster
from orchestrator.state.postgres.connection import DSN_VARIABLE
from orchestrator.state.postgres.store import PostgresStateStore


async def measure(dsn: str, writes: int) -> tuple[list[float], list[float]]:
    """Write-to-wake and commit-to-wake times, in milliseconds."""
    session_id = f"bench-notify-{secrets.token_hex(3)}"
    async with (
        await PostgresStateStore.connect(dsn, max_size=2) as a,
        await PostgresStateStore.connect(dsn, max_size=2) as b,
    ):
        await a.create_session({}, ["t1"], session_id=session_id)
        woken = anyio.Event()
        woken_at = 0.0

        def wake() -> None:
            nonlocal woken_at
            woken_at = time.perf_counter()
            woken.set()

        view = TaskView(b, session_id, refresh_every=3600, on_remote=wake)
        b.subscribe(view.on_event)
        with anyio.fail_after(10):
            await b.listen()
        await view.current()
        to_wake: list[float] = []
        after_commit: list[float] = []
        for n in range(writes):
            woken = anyio.Event()
            status = TaskStatus.QUEUED if n % 2 else TaskStatus.CANCELLED
            started = time.perf_counter()
            await a.update_task_state("t1", {"status": status})
            committed = time.perf_counter()
            with anyio.fail_after(5):
                await woken.wait()
            to_wake.append((woken_at - started) * 1000)
            after_commit.append(max(0.0, woken_at - committed) * 1000)
            await view.current()
        return to_wake, after_commit


def _summary(name: str, ms: list[float]) -> str:
    ordered = sorted(ms)
    p95 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.95))]
    return f"{name:<16} median {statistics.median(ms):7.2f} ms   p95 {p95:7.2f} ms"


async def main(writes: int, as_json: bool) -> None:
    parent = Path(tempfile.mkdtemp(prefix="council-notify-bench-"))
    parent.chmod(0o755)  # as root the server runs as postgres, which must reach it
    cluster = LocalCluster(parent / "pg")
    dsn = os.environ.get(DSN_VARIABLE)
    try:
        if not dsn:
            await cluster.up()
            dsn = cluster.url()
        to_wake, after_commit = await measure(dsn, writes)
        if as_json:
            figures = {
                "writes": writes,
                "write_to_wake_ms": statistics.median(to_wake),
                "commit_to_wake_ms": statistics.median(after_commit),
                "fallback_expected_ms": REFRESH_EVERY / 2 * 1000,
            }
            print(json.dumps(figures, indent=2))
            return
        print(f"{writes} task writes on store A, heard by store B's task view")
        print(_summary("write to wake", to_wake))
        print(_summary("commit to wake", after_commit))
        print(f"polling fallback (REFRESH_EVERY / 2): {REFRESH_EVERY / 2 * 1000:7.0f} ms expected")
        ratio = REFRESH_EVERY / 2 * 1000 / statistics.median(to_wake)
        print(f"notify is {ratio:.0f}x sooner than the fallback's expected latency")
    finally:
        try:
            if not os.environ.get(DSN_VARIABLE):
                await cluster.down()
        finally:
            shutil.rmtree(parent, ignore_errors=True)
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--writes", type=int, default=200)
    parser.add_argument("--quick", action="store_true", help="20 writes (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.writes = 20
    anyio.run(main, args.writes, args.json)
