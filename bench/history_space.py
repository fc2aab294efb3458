"""Bytes per version of a record's full history, on both backends.

One task is written ``--versions`` times the way a run writes it (status, phase, attempt and
a changing metadata entry, beside a fixed ~400-character prompt-sized note), then every
version is read back through ``record_history`` and checked. The figure is everything kept
for that record divided by the versions it holds:

- file: the bytes of every file in the record's directory (current, the ``v<N>`` window, the
  ``a<N>`` versions waiting, ``history.jsonl.gz``);
- PostgreSQL: ``pg_column_size`` of the current row's document, of its ``task_history`` and
  ``record_history`` rows and of its ``history_archive`` batches (the data as stored, TOAST
  compression included; table and index overhead left out).

    python bench/history_space.py [--versions 1000] [--no-postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import tempfile
from pathlib import Path
from typing import Any

import psycopg

from orchestrator.state import FileStateStore, StateStore
from orchestrator.state.postgres.cluster import LocalCluster
from orchestrator.state.postgres.store import PostgresStateStore

_STATUSES = ("queued", "running", "merging", "done")


def _update(n: int) -> dict[str, Any]:
    return {
        "status": _STATUSES[n % len(_STATUSES)],
        "current_phase": ("plan", "build", "review")[n % 3],
        "attempt": n // 4,
        "metadata": {"note": "x" * 400, "tick": n, "parks": n // 10},
    }


async def _write(store: StateStore, versions: int) -> None:
    for n in range(versions):
        await store.update_task_state("bench", _update(n))
    history = await store.record_history("tasks", "bench")
    assert [d["version"] for d in history] == list(range(versions, 0, -1))
    assert all(d["metadata"]["tick"] == versions - 1 - i for i, d in enumerate(history))


async def file_bytes(versions: int) -> int:
    with tempfile.TemporaryDirectory(prefix="council-history-") as tmp:
        async with FileStateStore(tmp) as store:
            await _write(store, versions)
            record = Path(tmp) / "tasks" / "bench"
            return sum(p.stat().st_size for p in record.iterdir() if p.name != ".lock")


async def postgres_bytes(versions: int) -> int:
    directory = Path(tempfile.mkdtemp(prefix="council-history-pg-"))
    directory.chmod(0o755)
    cluster = LocalCluster(directory / "cluster")
    try:
        await cluster.up()
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            conn.execute("CREATE DATABASE bench")
        async with await PostgresStateStore.connect(cluster.url("bench")) as store:
            await _write(store, versions)
        with psycopg.connect(cluster.url("bench")) as conn:
            row = conn.execute(
                "SELECT (SELECT sum(pg_column_size(doc)) FROM council.tasks "
                "WHERE task_id = 'bench') + (SELECT coalesce(sum(pg_column_size(doc)), 0) "
                "FROM council.task_history WHERE task_id = 'bench') + (SELECT "
                "coalesce(sum(pg_column_size(doc)), 0) FROM council.record_history WHERE "
                "kind = 'tasks' AND key = 'bench') + (SELECT coalesce(sum(pg_column_size(data)),"
                " 0) FROM council.history_archive WHERE kind = 'tasks' AND key = 'bench')"
            ).fetchone()
        assert row is not None
        return int(row[0])
    finally:
        await cluster.down()
        shutil.rmtree(directory, ignore_errors=True)
        shutil.rmtree(cluster.socket_dir, ignore_errors=True)


async def main(versions: int, postgres: bool, as_json: bool) -> None:
    sizes = {"file": await file_bytes(versions)}
    if postgres:
        sizes["postgresql"] = await postgres_bytes(versions)
    with tempfile.TemporaryDirectory() as tmp:
        async with FileStateStore(tmp) as store:
            one = len((await store.update_task_state("bench", _update(0))).model_dump_json())
    if as_json:
        per_version = {name: size / versions for name, size in sizes.items()}
        figures = {"versions": versions, "bytes": sizes, "bytes_per_version": per_version}
        print(json.dumps({**figures, "one_version_bytes": one}, indent=2))
        return
    for name, size in sizes.items():
        per = size / versions
        print(f"{name + ':':11} {size} bytes for {versions} versions = {per:.1f} B/version")
    print(f"(one whole version of this record: {one} bytes)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--versions", type=int, default=1000)
    parser.add_argument("--no-postgres", dest="postgres", action="store_false")
    parser.add_argument("--quick", action="store_true", help="100 versions (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.versions = 100
    asyncio.run(main(args.versions, args.postgres, args.json))
