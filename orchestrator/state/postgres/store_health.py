"""The PostgreSQL backend's health report (``state.health``): counts and sizes from the tables,
each document read back through its model (read-only, as ``verify_records`` does), and the
database's own figures: how long a round trip takes, the schema version, the tables' sizes."""

from __future__ import annotations

import time
from typing import Any

from pydantic import BaseModel, ValidationError

from orchestrator.models import Checkpoint, KeyedRecord, SessionRecord, TaskState
from orchestrator.state.health import (
    DamagedRecord,
    RecordSize,
    StoreHealth,
    finish_health,
    oldest_active_claim,
)
from orchestrator.state.postgres.core import Conn, PgCore
from orchestrator.state.postgres.schema import MIGRATIONS

__all__ = ["PgHealth"]

# (kind as reported, table, the key as SQL, the model of its documents); records by namespace
_KINDS: tuple[tuple[str | None, str, str, type[BaseModel]], ...] = (
    ("tasks", "tasks", "task_id", TaskState),
    ("sessions", "sessions", "session_id", SessionRecord),
    ("checkpoints", "checkpoints", "checkpoint_id", Checkpoint),
    (None, "records", "key", KeyedRecord),
)
_TABLES = ("tasks", "task_history", "sessions", "checkpoints", "records", "events")


class PgHealth:
    def __init__(self, core: PgCore, where: str) -> None:
        self._core = core
        self._where = where

    async def health(self, large_record_bytes: int) -> StoreHealth:
        async with self._core.pool.connection() as conn:
            started = time.perf_counter()
            await conn.execute("SELECT 1")
            latency_ms = (time.perf_counter() - started) * 1000
            counts: dict[str, int] = {}
            damaged: list[DamagedRecord] = []
            sizes: list[RecordSize] = []
            tasks: list[TaskState] = []
            for kind, table, key, model in _KINDS:
                namespace = "namespace" if kind is None else "NULL"
                cursor = await conn.execute(
                    f"SELECT {namespace}, {key}, doc, octet_length(doc::text) "  # noqa: S608
                    f"FROM council.{table} ORDER BY 1, 2"
                )
                for group, name, doc, size in await cursor.fetchall():
                    shown = kind or group
                    counts[shown] = counts.get(shown, 0) + 1
                    sizes.append(RecordSize(kind=shown, key=name, size=size))
                    try:
                        parsed = model.model_validate(doc)
                    except ValidationError as exc:
                        reason = f"not a valid {table} record: {exc.errors()[0]['msg']}"
                        damaged.append(DamagedRecord(kind=shown, key=name, reason=reason))
                        continue
                    if isinstance(parsed, TaskState):
                        tasks.append(parsed)
            newest = await _one(conn, "SELECT max(created_at) FROM council.checkpoints")
            table_bytes = {
                table: int(await _one(conn, f"SELECT pg_total_relation_size('council.{table}')"))
                for table in _TABLES
            }
            schema = await _one(conn, "SELECT max(version) FROM council.schema_migrations")
            event_count = await _one(conn, "SELECT count(*) FROM council.events")
        details: dict[str, Any] = {
            "latency_ms": round(latency_ms, 3),
            "schema_version": schema,
            "schema_version_known": len(MIGRATIONS),
            "table_bytes": table_bytes,
            "events": event_count,
        }
        fields: dict[str, Any] = {
            "backend": "postgresql",
            "where": self._where,
            "record_counts": counts,
            "damaged": damaged,
            "stale_locks": 0,  # the database holds no lock files: a dead holder's die with it
            "oldest_active_claim": oldest_active_claim(tasks),
            "event_log_bytes": table_bytes["events"],
            "last_checkpoint_at": newest,
            "backend_details": details,
        }
        return finish_health(fields, sizes, large_record_bytes)


async def _one(conn: Conn, query: str) -> Any:
    row = await (await conn.execute(query)).fetchone()
    return None if row is None else row[0]
