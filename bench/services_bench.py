"""What a session's own PostgreSQL costs to start (issue 50, ``orchestrator.services``): a
database cloned from a template per session (``CREATE DATABASE ... TEMPLATE``, one server for
every session) against a fresh cluster per session (``initdb`` and a server start each).

- ``fresh``: per session, ``LocalCluster.up`` in a new directory: ``initdb``, ``pg_ctl start``,
  ``createdb``; measured until the server answers; then the schema loaded (the same as the
  template's) and timed with it;
- ``clone``: one server, a template database with the schema loaded once; per session one
  ``CREATE DATABASE s<i> TEMPLATE tpl`` (PostgreSQL copies the template's files), timed alone.

Both sides end with a database holding the same schema and rows, ready for one session.

    .venv/bin/python bench/services_bench.py [--sessions N] [--rows R] [--quick] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

import psycopg

from orchestrator.state.postgres.cluster import LocalCluster


def _schema(rows: int) -> list[str]:
    return [
        "CREATE TABLE items (id integer PRIMARY KEY, name text NOT NULL, price numeric)",
        f"INSERT INTO items SELECT g, 'item ' || g, g * 1.5 FROM generate_series(1, {rows}) g",
        "CREATE INDEX items_name ON items (name)",
    ]


def _load(url: str, rows: int) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        for statement in _schema(rows):
            conn.execute(statement)


async def fresh(parent: Path, sessions: int, rows: int) -> tuple[list[float], list[float]]:
    """Per session: the seconds to a running server, and to a loaded database."""
    up, loaded = [], []
    for index in range(sessions):
        cluster = LocalCluster(parent / f"fresh{index}")
        began = time.perf_counter()
        await cluster.up()
        up.append(time.perf_counter() - began)
        await asyncio.to_thread(_load, cluster.url(), rows)
        loaded.append(time.perf_counter() - began)
        await cluster.down()
    return up, loaded


async def clone(parent: Path, sessions: int, rows: int) -> tuple[float, list[float]]:
    """The seconds the shared server and its template took once, and per session a clone."""
    cluster = LocalCluster(parent / "shared")
    began = time.perf_counter()
    await cluster.up()
    with psycopg.connect(cluster.url(), autocommit=True) as conn:
        conn.execute("CREATE DATABASE tpl")
    await asyncio.to_thread(_load, cluster.url("tpl"), rows)
    once = time.perf_counter() - began
    clones = []
    try:
        with psycopg.connect(cluster.url(), autocommit=True) as conn:
            for index in range(sessions):
                began = time.perf_counter()
                conn.execute(f"CREATE DATABASE s{index} TEMPLATE tpl")
                clones.append(time.perf_counter() - began)
        with psycopg.connect(cluster.url(f"s{sessions - 1}")) as conn:
            found = conn.execute("SELECT count(*) FROM items").fetchone()
        if found is None or found[0] != rows:
            raise SystemExit(f"the last clone holds {found} rows, not {rows}")
    finally:
        await cluster.down()
    return once, clones


def _ms(values: list[float]) -> float:
    return statistics.median(values) * 1000


async def main(sessions: int, rows: int, as_json: bool) -> None:
    out = sys.stderr if as_json else sys.stdout
    parent = Path(tempfile.mkdtemp(prefix="council-services-bench-"))
    parent.chmod(0o755)  # as root the server runs as postgres, which must reach it
    try:
        up, loaded = await fresh(parent, sessions, rows)
        once, clones = await clone(parent, sessions, rows)
    finally:
        shutil.rmtree(parent, ignore_errors=True)
    figures = {
        "sessions": sessions,
        "rows": rows,
        "fresh_up_ms": _ms(up),
        "fresh_loaded_ms": _ms(loaded),
        "template_once_ms": once * 1000,
        "clone_ms": _ms(clones),
        "fresh_over_clone": _ms(loaded) / _ms(clones),
    }
    print(f"{sessions} sessions, a schema of {rows} rows; medians per session:", file=out)
    print(f"  fresh cluster (initdb + start):      {figures['fresh_up_ms']:8.1f} ms", file=out)
    print(f"  fresh cluster, schema loaded:        {figures['fresh_loaded_ms']:8.1f} ms", file=out)
    print(f"  template clone (CREATE ... TEMPLATE): {figures['clone_ms']:7.1f} ms", file=out)
    print(f"  (the shared server and its template, once: {once * 1000:.1f} ms)", file=out)
    print(f"  fresh / clone: {figures['fresh_over_clone']:.1f}x", file=out)
    if as_json:
        print(json.dumps(figures))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=5)
    parser.add_argument("--rows", type=int, default=20000)
    parser.add_argument("--quick", action="store_true", help="2 sessions, 1000 rows")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.sessions, args.rows = 2, 1000
    asyncio.run(main(args.sessions, args.rows, args.json))
