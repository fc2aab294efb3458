"""Every version of any record of the PostgreSQL backend (``record_history``), and how old
versions are kept: whole in ``record_history`` (a task's newest ten in ``task_history``) for
the newest ``HISTORY_LIMIT``, then packed in batches of ``ARCHIVE_BATCH`` into
``history_archive`` (``state.history_archive``: a whole document, then deltas, gzip), inside
the transaction of the write that pushed them out, so a version is in exactly one place.

Kinds are named as in the protocol: ``tasks``, ``sessions``, ``records/<namespace>``. Fencing
tokens here come from a sequence, not a counter record, so ``counters`` has no history.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from orchestrator.ids import check_id
from orchestrator.state.history_archive import ARCHIVE_BATCH, pack, unpack, window
from orchestrator.state.history_kinds import parse_kind
from orchestrator.state.postgres.core import HISTORY_LIMIT, Conn, PgCore

__all__ = ["PgHistory", "forget_history", "keep_old_version", "move_out_of_task_window"]


async def keep_old_version(conn: Conn, kind: str, key: str, doc: Jsonb, version: int) -> None:
    """Keep the version a write of a session or keyed record replaced (the caller holds the
    record's row lock), packing a batch when one has left the window."""
    await conn.execute(
        "INSERT INTO council.record_history (kind, key, version, doc) VALUES (%s, %s, %s, %s) "
        "ON CONFLICT DO NOTHING",
        (kind, key, version, doc),
    )
    await _compact_if_due(conn, kind, key, version)


async def move_out_of_task_window(conn: Conn, task_id: str, version: int) -> None:
    """A task's version ``version`` was just put in ``task_history``: the one that left its
    window of ten goes on to ``record_history``, to be packed with its batch."""
    await conn.execute(
        "WITH moved AS (DELETE FROM council.task_history WHERE task_id = %s AND version <= %s "
        "RETURNING task_id, version, doc) INSERT INTO council.record_history "
        "(kind, key, version, doc) SELECT 'tasks', task_id, version, doc FROM moved "
        "ON CONFLICT DO NOTHING",
        (task_id, version - HISTORY_LIMIT),
    )
    await _compact_if_due(conn, "tasks", task_id, version)


async def _compact_if_due(conn: Conn, kind: str, key: str, version: int) -> None:
    dropped = version - HISTORY_LIMIT  # the version that just left the window
    if dropped <= 0 or dropped % ARCHIVE_BATCH:
        return
    cursor = await conn.execute(
        "DELETE FROM council.record_history WHERE kind = %s AND key = %s AND version <= %s "
        "RETURNING version, doc",
        (kind, key, dropped),
    )
    rows = sorted(await cursor.fetchall(), key=lambda row: int(row[0]))
    if not rows:
        return
    await conn.execute(
        "INSERT INTO council.history_archive (kind, key, first_version, last_version, data) "
        "VALUES (%s, %s, %s, %s, %s)",
        (kind, key, rows[0][0], rows[-1][0], pack(row[1] for row in rows)),
    )


async def forget_history(conn: Conn, kind: str, keys: list[str]) -> None:
    """Remove every kept version of these records (they are being removed)."""
    await conn.execute(
        "DELETE FROM council.record_history WHERE kind = %s AND key = ANY(%s)", (kind, keys)
    )
    await conn.execute(
        "DELETE FROM council.history_archive WHERE kind = %s AND key = ANY(%s)", (kind, keys)
    )


_CURRENT = {
    "tasks": "SELECT doc FROM council.tasks WHERE task_id = %(key)s",
    "sessions": "SELECT doc FROM council.sessions WHERE session_id = %(key)s",
    "records": "SELECT doc FROM council.records WHERE namespace = %(ns)s AND key = %(key)s",
}


class PgHistory:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]:
        name, namespace = parse_kind(kind)
        check_id(key, f"{kind} key")
        if name == "counters":
            return []
        args = {"key": key, "ns": namespace, "kind": kind, "before": before_version}
        whole = "SELECT doc FROM council.record_history WHERE kind = %(kind)s AND key = %(key)s"
        if name == "tasks":
            whole += " UNION ALL SELECT doc FROM council.task_history WHERE task_id = %(key)s"
        # One snapshot for all three reads: a write moving versions meanwhile is not seen.
        async with self._core.tx(snapshot=True) as conn:
            query = f"{_CURRENT[name]} UNION ALL {whole}"
            cursor = await conn.execute(query.encode(), args)
            recent = [row[0] for row in await cursor.fetchall()]
            found = window(recent, limit=limit, before_version=before_version)
            if limit is not None and len(found) >= limit:
                return found
            cursor = await conn.execute(
                "SELECT data FROM council.history_archive WHERE kind = %(kind)s "
                "AND key = %(key)s AND (%(before)s::integer IS NULL "
                "OR first_version < %(before)s::integer) ORDER BY first_version",
                args,
            )
            older = [doc for row in await cursor.fetchall() for doc in unpack(bytes(row[0]))]
        return window([*recent, *older], limit=limit, before_version=before_version)
