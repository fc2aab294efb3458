"""Keyed records of other layers (worktree and file ownership, the merge lock's holder) in the
PostgreSQL backend, one namespace each, versioned like tasks."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from orchestrator.errors import VersionConflict
from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord
from orchestrator.state.postgres.core import Conn, PgCore, jsonb, merged

__all__ = ["PgRecords", "expect_version", "read_record", "write_record"]


class PgRecords:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        _check(namespace, key)
        async with self._core.pool.connection() as conn:
            return await read_record(conn, namespace, key)

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> KeyedRecord:
        del durable  # every commit is durable here
        _check(namespace, key)

        async def work(conn: Conn, events: list[Event]) -> KeyedRecord:
            current = await read_record(conn, namespace, key, lock=True)
            expect_version(namespace, key, current, expected_version)
            now = await self._core.now(conn)
            return await write_record(conn, namespace, key, current, data, now, events)

        return await self._core.atomically(work)

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        del durable
        _check(namespace, key)

        async def work(conn: Conn, events: list[Event]) -> bool:
            current = await read_record(conn, namespace, key, lock=True)
            if current is None and expected_version in (None, 0):
                return False
            expect_version(namespace, key, current, expected_version)
            await conn.execute(
                "DELETE FROM council.records WHERE namespace = %s AND key = %s", (namespace, key)
            )
            return current is not None

        return await self._core.atomically(work)

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        check_id(namespace, "record namespace")
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                "SELECT doc FROM council.records WHERE namespace = %s ORDER BY key", (namespace,)
            )
            rows = await cursor.fetchall()
        return [KeyedRecord.model_validate(row[0]) for row in rows]


def _check(namespace: str, key: str) -> None:
    check_id(namespace, "record namespace")
    check_id(key, f"{namespace} key")


def expect_version(
    namespace: str, key: str, current: KeyedRecord | None, expected: int | None
) -> None:
    if expected is None:
        return
    actual = current.version if current is not None else 0
    if actual != expected:
        raise VersionConflict(f"records/{namespace}/{key}", expected, actual if current else None)


async def read_record(
    conn: Conn, namespace: str, key: str, *, lock: bool = False
) -> KeyedRecord | None:
    query = "SELECT doc FROM council.records WHERE namespace = %s AND key = %s"
    cursor = await conn.execute(query + (" FOR UPDATE" if lock else ""), (namespace, key))
    row = await cursor.fetchone()
    return KeyedRecord.model_validate(row[0]) if row is not None else None


async def write_record(
    conn: Conn,
    namespace: str,
    key: str,
    current: KeyedRecord | None,
    data: Mapping[str, Any],
    now: datetime,
    events: list[Event],
) -> KeyedRecord:
    """Write the record's next version (the caller holds its row lock, if it has a row)."""
    version = current.version if current is not None else 0
    fields = {"namespace": namespace, "data": dict(data)}
    kind = f"records/{namespace}"
    record = merged(KeyedRecord, kind, "key", key, current, fields, version, now, events)
    if current is None:  # two creations race: the second fails here and runs again
        await conn.execute(
            "INSERT INTO council.records (version, doc, updated_at, namespace, key) "
            "VALUES (%s, %s, %s, %s, %s)",
            (record.version, jsonb(record), now, namespace, key),
        )
    else:
        await conn.execute(
            "UPDATE council.records SET version = %s, doc = %s, updated_at = %s "
            "WHERE namespace = %s AND key = %s",
            (record.version, jsonb(record), now, namespace, key),
        )
    return record
