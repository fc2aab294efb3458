"""Keyed records of other layers (worktree and file ownership, the merge lock's holder) in the
PostgreSQL backend, one namespace each, versioned like tasks; one written with a ``ttl``
expires (``state.expiry``), judged by the database's clock."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import anyio.to_thread

from orchestrator.errors import VersionConflict
from orchestrator.events import Event
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.state.carried import CarriedPut, checked_carried
from orchestrator.state.deletions import Deletion, checked
from orchestrator.state.expiry import expires_at, live
from orchestrator.state.history_kinds import keyed_kind
from orchestrator.state.postgres.core import Conn, PgCore, as_stored, jsonb, merged
from orchestrator.state.postgres.history import forget_history, keep_old_version
from orchestrator.state.validators import Validators

__all__ = ["PgRecords", "delete_records", "expect_version", "read_record", "write_record"]


class PgRecords:
    def __init__(self, core: PgCore) -> None:
        self._core = core

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None:
        _check(namespace, key)
        async with self._core.pool.connection() as conn:
            return await read_record(conn, namespace, key, live_only=True)

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> KeyedRecord:
        del durable  # every commit is durable here
        _check(namespace, key)

        async def work(conn: Conn, events: list[Event]) -> KeyedRecord:
            current = await read_record(conn, namespace, key, lock=True)
            now = await self._core.now(conn)
            # An expired record is absent to the version check, but its versions go on.
            expect_version(namespace, key, live(current, now), expected_version)
            return await write_record(
                conn, namespace, key, current, data, ttl, now, events, rules=self._core.validators
            )

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
            stored = await read_record(conn, namespace, key, lock=True)
            current = live(stored, await self._core.now(conn))
            expect_version(namespace, key, current, expected_version)
            if stored is not None:
                await delete_records(conn, namespace, [key])
            return current is not None

        return await self._core.atomically(work)

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        """Each as ``delete_record`` would, in one transaction: every version checked (a
        mismatch deletes none), then one statement per namespace."""
        wanted = checked(items)

        async def work(conn: Conn, events: list[Event]) -> list[bool]:
            now = await self._core.now(conn)
            found: list[bool] = []
            gone: dict[str, list[str]] = {}
            for namespace, key, expected in wanted:
                stored = await read_record(conn, namespace, key, lock=True)
                current = live(stored, now)
                expect_version(namespace, key, current, expected)
                if stored is not None:
                    gone.setdefault(namespace, []).append(key)
                found.append(current is not None)
            for namespace, keys in gone.items():
                await delete_records(conn, namespace, keys)
            return found

        if not wanted:
            return []
        return await self._core.atomically(work)

    async def put_and_delete_records(
        self, puts: Sequence[CarriedPut], deletions: Sequence[Deletion]
    ) -> tuple[list[KeyedRecord | None], list[bool]]:
        """In one transaction: every record's row locked in the global order, every ``make``
        run (in one worker-thread call, on the rows as found), every deletion's version
        checked; then the deletions, then the puts (``StateStore.put_and_delete_records``).
        A creation racing another's runs the whole transaction again, ``make`` with it."""
        gone = checked(deletions)
        made = checked_carried(puts, *((d.namespace, d.key) for d in gone))
        for put in made:
            expires_at(utcnow(), put.ttl)  # a bad ttl is refused before the transaction
        if not made and not gone:
            return [], []
        places = sorted({(p.namespace, p.key) for p in made} | {(d[0], d[1]) for d in gone})

        async def work(
            conn: Conn, events: list[Event]
        ) -> tuple[list[KeyedRecord | None], list[bool]]:
            now = await self._core.now(conn)
            stored = {place: await read_record(conn, *place, lock=True) for place in places}
            current = [live(stored[(p.namespace, p.key)], now) for p in made]
            datas = await anyio.to_thread.run_sync(
                lambda: [put.make(found) for put, found in zip(made, current, strict=True)]
            )
            found: list[bool] = []
            doomed: dict[str, list[str]] = {}
            for namespace, key, expected in gone:
                there = live(stored[(namespace, key)], now)
                expect_version(namespace, key, there, expected)
                if stored[(namespace, key)] is not None:
                    doomed.setdefault(namespace, []).append(key)
                found.append(there is not None)
            for namespace, keys in doomed.items():
                await delete_records(conn, namespace, keys)
            written: list[KeyedRecord | None] = []
            for put, data in zip(made, datas, strict=True):
                if data is None:
                    written.append(None)
                    continue
                before = stored[(put.namespace, put.key)]
                written.append(
                    await write_record(
                        conn,
                        put.namespace,
                        put.key,
                        before,
                        data,
                        put.ttl,
                        now,
                        events,
                        rules=self._core.validators,
                    )
                )
            return written, found

        return await self._core.atomically(work)

    async def list_records(self, namespace: str) -> list[KeyedRecord]:
        check_id(namespace, "record namespace")
        async with self._core.pool.connection() as conn:
            cursor = await conn.execute(
                f"SELECT doc FROM council.records WHERE namespace = %s AND {_LIVE} "  # noqa: S608
                "ORDER BY key",
                (namespace,),
            )
            rows = await cursor.fetchall()
        return [KeyedRecord.model_validate(row[0]) for row in rows]

    async def purge_expired(self, now: datetime | None = None) -> int:
        """Remove every keyed record expired by ``now`` (the database's clock when None)."""

        async def work(conn: Conn, events: list[Event]) -> int:
            cursor = await conn.execute(
                "SELECT namespace, key FROM council.records "
                "WHERE expires_at <= coalesce(%s, now()) FOR UPDATE",
                (now,),
            )
            expired: dict[str, list[str]] = {}
            for namespace, key in await cursor.fetchall():
                expired.setdefault(namespace, []).append(key)
            for namespace, keys in expired.items():
                await delete_records(conn, namespace, keys)
            return sum(map(len, expired.values()))

        return await self._core.atomically(work)


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


_LIVE = "(expires_at IS NULL OR expires_at > now())"


async def read_record(
    conn: Conn, namespace: str, key: str, *, lock: bool = False, live_only: bool = False
) -> KeyedRecord | None:
    """The record as stored (``live_only``: None once it expired)."""
    query = "SELECT doc FROM council.records WHERE namespace = %s AND key = %s"
    query += f" AND {_LIVE}" if live_only else ""
    cursor = await conn.execute(query + (" FOR UPDATE" if lock else ""), (namespace, key))
    row = await cursor.fetchone()
    return KeyedRecord.model_validate(row[0]) if row is not None else None


async def delete_records(conn: Conn, namespace: str, keys: list[str]) -> None:
    """Remove these records of ``namespace`` with every version kept of them."""
    await conn.execute(
        "DELETE FROM council.records WHERE namespace = %s AND key = ANY(%s)", (namespace, keys)
    )
    await forget_history(conn, keyed_kind(namespace), keys)


async def write_record(
    conn: Conn,
    namespace: str,
    key: str,
    current: KeyedRecord | None,
    data: Mapping[str, Any],
    ttl: float | None,
    now: datetime,
    events: list[Event],
    *,
    rules: Validators,
) -> KeyedRecord:
    """Write the record's next version (the caller holds its row lock, if it has a row); the
    previous one goes to its history."""
    version = current.version if current is not None else 0
    expiry = expires_at(now, ttl)
    fields = {"namespace": namespace, "data": dict(data), "expires_at": expiry}
    kind = keyed_kind(namespace)
    record, doc = as_stored(
        merged(KeyedRecord, kind, "key", key, current, fields, version, now, events, rules=rules)
    )
    if current is None:  # two creations race: the second fails here and runs again
        await conn.execute(
            "INSERT INTO council.records (version, doc, updated_at, expires_at, "
            "namespace, key) VALUES (%s, %s, %s, %s, %s, %s)",
            (record.version, doc, now, expiry, namespace, key),
        )
    else:
        await keep_old_version(conn, kind, key, jsonb(current), current.version)
        await conn.execute(
            "UPDATE council.records SET version = %s, doc = %s, updated_at = %s, "
            "expires_at = %s WHERE namespace = %s AND key = %s",
            (record.version, doc, now, expiry, namespace, key),
        )
    return record
