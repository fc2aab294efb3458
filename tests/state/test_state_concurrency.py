"""Several OS processes update one task through optimistic locking; no update is lost."""

from __future__ import annotations

import multiprocessing
from pathlib import Path

import anyio

from orchestrator.errors import VersionConflict
from orchestrator.state import FileStateStore
from tests.support.timing import patience

WORKERS = 4
INCREMENTS = 25


def worker(root: str, name: str, increments: int) -> None:
    async def run() -> None:
        async with FileStateStore(root, lock_timeout=30) as store:
            done = 0
            while done < increments:
                task = await store.get_task_state("shared")
                assert task is not None
                counts = dict(task.metadata)
                counts["total"] = counts.get("total", 0) + 1
                counts[name] = counts.get(name, 0) + 1
                try:
                    await store.update_task_state(
                        "shared", {"metadata": counts}, expected_version=task.version
                    )
                except VersionConflict:
                    continue  # someone wrote in between: read again and retry
                done += 1

    anyio.run(run)


async def test_no_update_is_lost_across_processes(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        await store.update_task_state("shared", {"metadata": {"total": 0}})
    context = multiprocessing.get_context("spawn")
    processes = [
        context.Process(target=worker, args=(str(tmp_path), f"w{n}", INCREMENTS))
        for n in range(WORKERS)
    ]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=patience(120))
    assert [p.exitcode for p in processes] == [0] * WORKERS

    async with FileStateStore(tmp_path) as store:
        task = await store.get_task_state("shared")
        assert task is not None
        assert task.metadata["total"] == WORKERS * INCREMENTS
        assert all(task.metadata[f"w{n}"] == INCREMENTS for n in range(WORKERS))
        assert task.version == WORKERS * INCREMENTS + 1
        versions = [e.data["version"] for e in store.events.read() if e.type == "state.updated"]
        assert sorted(versions) == list(range(1, WORKERS * INCREMENTS + 2))


def claimer(root: str, results: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    async def run() -> None:
        async with FileStateStore(root, lock_timeout=30) as store:
            holder = f"pid-{multiprocessing.current_process().pid}"
            claim = await store.acquire_claim("job", holder, 60)
            results.put(claim.token if claim else None)

    anyio.run(run)


async def test_exactly_one_process_wins_a_claim(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        await store.update_task_state("job", {})
    context = multiprocessing.get_context("spawn")
    results = context.Queue()
    processes = [context.Process(target=claimer, args=(str(tmp_path), results)) for _ in range(4)]
    for process in processes:
        process.start()
    for process in processes:
        process.join(timeout=patience(120))
    tokens = [results.get(timeout=patience(5)) for _ in processes]
    assert len([t for t in tokens if t is not None]) == 1
