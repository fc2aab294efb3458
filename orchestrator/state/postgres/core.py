"""What the PostgreSQL backend's parts share: the connection pool, short transactions, the
database's clock, the merge of an update into a record, and the events.

Every transaction is short: it reads what it changes ``FOR UPDATE``, checks versions and
fences, writes, records its events in ``events`` and ``pg_notify``-es them, and commits. No
transaction stays open while anything else (a CLI, git) runs. Times that decide leases come
from the database (``now()``), never from a workstation's clock. Documents and events are
masked (``secret_mask``) before they are stored.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar

from psycopg import AsyncConnection, errors
from psycopg.types.json import Jsonb
from psycopg_pool import AsyncConnectionPool
from pydantic import BaseModel, ValidationError

from orchestrator.errors import StateError
from orchestrator.event_text import sentence
from orchestrator.events import Event, Subscriber
from orchestrator.events.state import StateUpdated
from orchestrator.safety.secret_mask import masked_model
from orchestrator.state.postgres.notices import encode
from orchestrator.state.record_rules import STORE_OWNED
from orchestrator.state.validators import Validators

__all__ = ["CHANNEL", "HISTORY_LIMIT", "Conn", "PgCore", "jsonb", "merged"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Conn = AsyncConnection[Any]

CHANNEL = "council_events"  # what pg_notify tells the other workstations
HISTORY_LIMIT = 10


class PgCore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        # Names this store in its notices, so its own listener can drop them (``notices``).
        self.origin = secrets.token_hex(8)
        self._subscribers: list[Subscriber] = []
        self.validators = Validators()

    @asynccontextmanager
    async def tx(self) -> AsyncIterator[Conn]:
        """One short transaction."""
        async with self.pool.connection() as conn, conn.transaction():
            yield conn

    async def atomically(self, work: Callable[[Conn, list[Event]], Awaitable[T]]) -> T:
        """``work`` in one transaction whose events are stored with it and handed to this
        process's subscribers after the commit. Run again (at most three times) when it lost
        a race the database settled: two creations of one record, a deadlock."""
        for attempt in range(3):
            events: list[Event] = []
            try:
                async with self.tx() as conn:
                    result = await work(conn, events)
                    await self.record_events(conn, events)
            except (errors.UniqueViolation, errors.DeadlockDetected):
                if attempt == 2:
                    raise
                continue
            self.notify(events)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    async def now(conn: Conn) -> datetime:
        """The database's clock (the transaction's start): what leases are measured on."""
        row = await (await conn.execute("SELECT now()")).fetchone()
        assert row is not None
        return _utc(row[0])

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def record_events(self, conn: Conn, events: list[Event]) -> None:
        """Store ``events`` in the transaction that caused them, and tell the other
        workstations (``notices``: delivered only if the transaction commits)."""
        for event in map(masked_model, events):
            data = Jsonb(event.data)
            await conn.execute(
                "INSERT INTO council.events (at, type, level, data) VALUES (%s, %s, %s, %s)",
                (event.ts, event.type, event.level, data),
            )
            await conn.execute("SELECT pg_notify(%s, %s)", (CHANNEL, encode(event, self.origin)))

    def notify(self, events: list[Event]) -> None:
        """Hand events to this process's subscribers (after their commit); a failing
        subscriber is logged, never fatal."""
        for event in map(masked_model, events):
            if event.level == "warning":
                # The data stays in the event; the type lets a command that already says
                # the event as a line of its own skip saying it again.
                log.warning("%s", sentence(event), extra={"council_event": event.type})
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception:
                    log.exception("event subscriber %r failed on %s", subscriber, event.type)

    async def emit(self, event: Event) -> None:
        async with self.tx() as conn:
            await self.record_events(conn, [event])
        self.notify([event])


def merged(
    model: type[M],
    kind: str,
    key_field: str,
    key: str,
    current: M | None,
    updates: Mapping[str, Any],
    version: int,
    now: datetime,
    events: list[Event],
    *,
    rules: Validators,
    announce: bool = True,
) -> M:
    """``updates`` merged into ``current`` (or a new record), version ``version + 1``; a
    ``StateError`` naming the field when the result is not a valid record."""
    base = current.model_dump() if current is not None else {}
    fields = {k: v for k, v in updates.items() if k not in STORE_OWNED}
    data = {**base, **fields, key_field: key, "version": version + 1, "updated_at": now}
    try:
        record = model.model_validate(data)
    except ValidationError as exc:
        problem = exc.errors()[0]
        where = ".".join(str(p) for p in problem["loc"])
        raise StateError(
            f"invalid update of {kind} record {key!r}: {where}: {problem['msg']}"
        ) from None
    rules.check(kind, key, current, record)  # raised inside the transaction: nothing written
    if announce:
        events.append(StateUpdated(kind=kind, key=key, version=version + 1, fields=sorted(fields)))
    return record


def jsonb(record: BaseModel) -> Jsonb:
    """A record as stored: masked, dumped to JSON."""
    return Jsonb(masked_model(record).model_dump(mode="json"))


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
