"""Claim throughput of the PostgreSQL state backend, with the file backend measured in the same
run as the reference, and their ratios.

What is measured, for each backend and each number of concurrent claimers: a new session of N
queued tasks, then every claimer reads the queue through the store's protocol (``list_tasks``
of the session, keeping the queued tasks without a live claim), takes them in an order of its
own (shuffled, so claimers seldom go for the same task) and for each one calls
``acquire_claim`` (status -> running) and, when it won, ``release_claim`` (completed, status ->
done); a race lost to another claimer (None) is counted and skipped. When its list runs out it
reads the queue again, until no queued task is left. claims/s = N / wall time: one acquire and
one release per task, plus the listings.

PostgreSQL claimers are as workstations would be: each its own ``PostgresStateStore`` with its
own pool (at most 2 connections). File claimers share one ``FileStateStore`` (it is one
machine's store). All claimers are asyncio tasks of this one Python process, so the client's
CPU counts too, as it would on a workstation; on a small machine the server shares the CPUs.

    python bench/claim_bench.py [--tasks 2000] [--claimers 1,4,16]

With ``COUNCIL_DATABASE_URL`` set it uses that database (and leaves its sessions and tasks
there, ids prefixed ``bench``); otherwise it starts a throwaway ``LocalCluster`` beside the file
store in one temporary directory, and removes both afterwards.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TextIO

import anyio

from orchestrator.models import ClaimStatus, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.postgres.cluster import LocalCluster
from orchestrator.state.postgres.connection import DSN_VARIABLE
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.state.protocol import StateStore

LEASE = 90.0
Opener = Callable[[], AbstractAsyncContextManager[StateStore]]


@dataclass(frozen=True)
class Round:
    session_id: str
    claimers: int
    tasks: int
    seconds: float
    lost_races: int
    listings: int

    @property
    def rate(self) -> float:
        return self.tasks / self.seconds


async def queued(store: StateStore, session_id: str) -> list[str]:
    tasks = await store.list_tasks(session_id)
    return [t.task_id for t in tasks if t.status == TaskStatus.QUEUED and t.claim is None]


async def claimer(store: StateStore, session_id: str, name: str, tally: list[int]) -> None:
    """Claim and release queued tasks until none is left (module doc); tally: lost, listings."""
    rng = random.Random(name)
    while True:
        todo = await queued(store, session_id)
        tally[1] += 1
        if not todo:
            return
        rng.shuffle(todo)
        for task_id in todo:
            claim = await store.acquire_claim(task_id, name, LEASE, {"status": TaskStatus.RUNNING})
            if claim is None:
                tally[0] += 1
                continue
            done = {"status": TaskStatus.DONE}
            await store.release_claim(task_id, claim.token, ClaimStatus.COMPLETED, done)


async def run_round(open_store: Opener, setup: StateStore, claimers: int, n: int) -> Round:
    stamp = f"bench{time.time_ns() % 10**12}-{claimers}"
    session = await setup.create_session({}, [f"{stamp}-{i:05d}" for i in range(n)])
    tally = [0, 0]
    async with _stores(open_store, claimers) as stores:
        started = time.perf_counter()
        async with anyio.create_task_group() as group:
            for number, store in enumerate(stores):
                group.start_soon(claimer, store, session.session_id, f"w{number}", tally)
        seconds = time.perf_counter() - started
    left = await queued(setup, session.session_id)
    assert not left, f"{len(left)} tasks were never claimed"
    return Round(session.session_id, claimers, n, seconds, tally[0], tally[1])


@asynccontextmanager
async def _stores(open_store: Opener, count: int) -> AsyncIterator[list[StateStore]]:
    opened: list[StateStore] = []
    managers = [open_store() for _ in range(count)]
    try:
        for manager in managers:
            opened.append(await manager.__aenter__())
        yield opened
    finally:
        for manager in managers[: len(opened)]:
            await manager.__aexit__(None, None, None)


async def listing_ms(store: StateStore, session_id: str) -> float:
    times = []
    for _ in range(5):
        started = time.perf_counter()
        await store.list_tasks(session_id)
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1e3


async def measure(
    label: str, open_store: Opener, setup: StateStore, levels: Sequence[int], n: int, out: TextIO
) -> list[Round]:
    rounds = []
    for claimers in levels:
        result = await run_round(open_store, setup, claimers, n)
        rounds.append(result)
        print(
            f"{label:<10} {claimers:>3} claimers  {result.rate:>8,.0f} claims/s  "
            f"({result.seconds:.2f} s, {result.lost_races} lost races, "
            f"{result.listings} listings)",
            file=out,
            flush=True,
        )
    return rounds


def _figures(rounds: list[Round], listing: float) -> dict[str, object]:
    by_level = {
        str(r.claimers): {"claims_per_s": r.rate, "seconds": r.seconds, "lost_races": r.lost_races}
        for r in rounds
    }
    return {"claimers": by_level, "list_tasks_ms": listing}


async def main(n: int, levels: Sequence[int], as_json: bool) -> None:
    out = sys.stderr if as_json else sys.stdout  # the figures' JSON alone on stdout
    parent = Path(tempfile.mkdtemp(prefix="council-claim-bench-"))
    parent.chmod(0o755)  # as root the server runs as postgres, which must reach it
    cluster = LocalCluster(parent / "pg")
    dsn = os.environ.get(DSN_VARIABLE)
    try:
        if not dsn:
            await cluster.up()
            dsn = cluster.url()

        server = dsn

        def open_pg() -> AbstractAsyncContextManager[StateStore]:
            return _pg_store(server)

        print(f"{n} tasks per round; claimers: {', '.join(map(str, levels))}", file=out)
        print(
            "claims/s = tasks / wall time; a claim is acquire + release, plus list_tasks", file=out
        )
        print("whenever a claimer's list of queued tasks runs out (module doc)", file=out)
        async with await PostgresStateStore.connect(server) as pg_setup:
            pg = await measure("postgresql", open_pg, pg_setup, levels, n, out)
            pg_listed = await listing_ms(pg_setup, pg[-1].session_id)
            print(f"{'postgresql':<10} one list_tasks of {n} tasks: {pg_listed:.1f} ms", file=out)
        async with FileStateStore(parent / "file") as file_store:

            def open_file() -> AbstractAsyncContextManager[StateStore]:
                return _shared(file_store)

            files = await measure("file", open_file, file_store, levels, n, out)
            listed = await listing_ms(file_store, files[-1].session_id)
            print(f"{'file':<10} one list_tasks of {n} tasks: {listed:.1f} ms", file=out)
        for p, f in zip(pg, files, strict=True):
            ratio = p.rate / f.rate
            print(f"ratio postgresql/file at {p.claimers:>2} claimers: {ratio:.2f}x", file=out)
        scale = pg[-1].rate / pg[0].rate
        print(f"postgresql {pg[-1].claimers} claimers / 1 claimer: {scale:.2f}x", file=out)
        if as_json:
            figures = {"postgresql": _figures(pg, pg_listed), "file": _figures(files, listed)}
            print(json.dumps({"tasks": n, **figures}, indent=2))
    finally:
        try:
            await cluster.down()
        finally:
            shutil.rmtree(parent, ignore_errors=True)
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)


@asynccontextmanager
async def _pg_store(dsn: str) -> AsyncIterator[StateStore]:
    async with await PostgresStateStore.connect(dsn, min_size=1, max_size=2) as store:
        yield store


@asynccontextmanager
async def _shared(store: StateStore) -> AsyncIterator[StateStore]:
    yield store


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=2000)
    parser.add_argument("--claimers", default="1,4,16")
    parser.add_argument("--quick", action="store_true", help="100 tasks, 1 and 4 claimers (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.claimers = 100, "1,4"
    anyio.run(main, args.tasks, [int(c) for c in args.claimers.split(",")], args.json)
