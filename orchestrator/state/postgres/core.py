"""What the PostgreSQL backend's parts share: the connection pool, short transactions, the
database's clock, the merge of an update into a record, and the events.

Every transaction is short: it reads what it changes ``FOR UPDATE``, checks versions and
fences, writes, records its events in ``events`` and ``pg_notify``-es them, and commits. No
transaction stays open while anything else (a CLI, git) runs. Times that decide leases come
from the database (``now()``), never from a workstation's clock. Documents and events are
masked (``secret_mask``) before they are stored.

**Round trips.** A transaction runs in libpq's pipeline mode: a statement is sent without
waiting for its answer, and the client waits only where it needs one (a row it reads) and at
the commit. ``BEGIN``, the clock (``now()``, the transaction's start, asked with it) and the
first locking read travel together; the writes, the events (one statement for all of them,
stored and ``pg_notify``-ed) and ``COMMIT`` travel together: a typical write is two round
trips, an event alone one. A statement that fails aborts the rest of the transaction on the
server, ``COMMIT`` included, and is raised at the next wait, at the latest the last: nothing
is committed that was not checked, and the transaction is rolled back. (An error caught inside
and not raised: its ``COMMIT`` rolls back, and ``tx`` raises ``StateError`` rather than return as
if it had committed.)

**Stalls.** Every wait of the client inside a transaction ends what it sent with a pipeline
Sync (``_SyncedCursor``; the commit's is the pipeline's end), never with a bare Flush, in the
same round trip: the server answers and says it is ready, so while the client reads its rows
and thinks, its transaction is ``idle in transaction``, not ``active``. A workstation stopped
there (SIGSTOP, a suspended laptop, a debugger) with rows locked ``FOR UPDATE`` is caught by
the server's ``idle_in_transaction_session_timeout`` (``connection``): the server ends the
session and its locks go to the teammates waiting for them. When the holder resumes, the rest
of its transaction fails on the lost connection (``outages``: tried again from its first read,
where the versions and fences it checks see what the others did meanwhile), never committed
in part. Pooled
connections are in autocommit mode, so a read outside a transaction is one round trip (no
implicit transaction to roll back when the connection goes back to the pool).

**Events emitted on their own** (``emit``: a dispatch, a phase's start, a merge's timings) are
handed to this process's subscribers at once and stored, as the file backend's log is, without
the caller waiting: each goes with the next transaction of this store, stored (and
``pg_notify``-ed) before that transaction's own events, or, when none comes within
``EMITTED_WAIT`` seconds, in a transaction of their own; the store's ``aclose`` stores what is
left. A transaction that does not commit gives them back, first in line. Like the file
backend's log, the last of them are lost if the process dies (or the database stays away for
longer than ``MAX_EMITTED`` of them).

**Durability.** A transaction of emitted events alone commits without waiting for the
server's disk (``synchronous_commit off`` for that transaction alone), as the file backend's
event log is not fsynced either: it is atomic and seen at once; a crash of the database server
may lose the last of them, never one that a later durable commit of the same server follows
(the server's log is written in order). Every record write (tasks, claims, sessions, keyed
records, the landing's write-ahead record) still waits for the disk: a workstation outlives a
server crash, so a version it was told of must not be lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, TypeVar
from weakref import WeakKeyDictionary

import anyio
import psycopg
from psycopg import AsyncConnection, AsyncCursor, AsyncPipeline, errors
from psycopg.pq import TransactionStatus
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

__all__ = ["CHANNEL", "HISTORY_LIMIT", "Conn", "PgCore", "as_stored", "jsonb", "merged"]

log = logging.getLogger(__name__)

M = TypeVar("M", bound=BaseModel)
T = TypeVar("T")
Conn = AsyncConnection[Any]

CHANNEL = "council_events"  # what pg_notify tells the other workstations
EMITTED_WAIT = 0.05  # seconds an emitted event waits for a transaction to carry it
MAX_EMITTED = 10_000  # emitted events kept while they cannot be stored
HISTORY_LIMIT = 10


class PgCore:
    def __init__(self, pool: AsyncConnectionPool[Any]) -> None:
        self.pool = pool
        # Names this store in its notices, so its own listener can drop them (``notices``).
        self.origin = secrets.token_hex(8)
        self._subscribers: list[Subscriber] = []
        self.validators = Validators()
        self._pipelined = AsyncPipeline.is_supported()  # libpq 14 or newer
        self._emitted: list[Event] = []  # emitted, masked, not stored yet (``emit``)
        self._storing: asyncio.Task[None] | None = None

    @asynccontextmanager
    async def tx(self, *, snapshot: bool = False, durable: bool = True) -> AsyncIterator[Conn]:
        """One short transaction, pipelined (module doc): its ``BEGIN`` and clock go with its
        first read, its ``COMMIT`` with its last writes. ``snapshot``: every read of it sees
        one snapshot (repeatable read); not ``durable``: its commit does not wait for the
        disk (module doc). Whatever ends it early rolls it back."""
        async with self.pool.connection() as conn:
            if not self._pipelined:
                async with conn.transaction():
                    await _settings(conn, snapshot, durable)
                    yield conn
                return
            factory = conn.cursor_factory
            try:
                # Each wait for rows syncs what was sent (``_SyncedCursor``); the pipeline's
                # end syncs the commit. A statement's error is raised at the first of them.
                async with conn.pipeline() as pipeline:
                    _pipelines[conn] = pipeline
                    conn.cursor_factory = _SyncedCursor
                    await conn.execute(b"BEGIN")
                    await _settings(conn, snapshot, durable)
                    _clocks[conn] = await conn.execute(b"SELECT now()")
                    yield conn
                    commit = await conn.execute(b"COMMIT")
                # An error caught inside and not raised leaves the transaction aborted after
                # a sync: its COMMIT then rolls back without an error. Never a quiet success.
                if commit.statusmessage != "COMMIT":
                    raise StateError(
                        "a transaction of the state database did not commit "
                        f"({commit.statusmessage}): an error inside it was not raised"
                    )
            except BaseException:
                with anyio.CancelScope(shield=True):
                    await _roll_back(conn)
                raise
            finally:
                conn.cursor_factory = factory
                _pipelines.pop(conn, None)
                _clocks.pop(conn, None)

    async def atomically(
        self, work: Callable[[Conn, list[Event]], Awaitable[T]], *, durable: bool = True
    ) -> T:
        """``work`` in one transaction whose events are stored with it and handed to this
        process's subscribers after the commit. Run again (at most three times) when it lost
        a race the database settled: two creations of one record, a deadlock. Not ``durable``:
        its commit does not wait for the disk (module doc)."""
        for attempt in range(3):
            events: list[Event] = []
            carried = self._take_emitted()
            try:
                async with self.tx(durable=durable) as conn:
                    result = await work(conn, events)
                    await self.record_events(conn, events, carried)
            except (errors.UniqueViolation, errors.DeadlockDetected):
                self._give_back(carried)
                if attempt == 2:
                    raise
                continue
            except BaseException:
                self._give_back(carried)
                raise
            self.notify(events)
            return result
        raise AssertionError("unreachable")

    @staticmethod
    async def now(conn: Conn) -> datetime:
        """The database's clock (the transaction's start): what leases are measured on. Inside
        ``tx`` it was asked with the ``BEGIN``: no round trip of its own."""
        clock = _clocks.get(conn)
        if isinstance(clock, datetime):
            return clock
        cursor = clock if clock is not None else await conn.execute("SELECT now()")
        row = await cursor.fetchone()
        assert row is not None
        if clock is not None:
            _clocks[conn] = _utc(row[0])  # asked again, the same answer
        return _utc(row[0])

    # -- events ---------------------------------------------------------------------------

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    async def record_events(
        self, conn: Conn, events: list[Event], emitted: Sequence[Event] = ()
    ) -> None:
        """Store ``events`` in the transaction that caused them, after ``emitted`` (events
        emitted before it, masked already, not stored yet), and tell the other workstations
        (``notices``: delivered only if the transaction commits)."""
        stored = [*emitted, *map(masked_model, events)]
        if not stored:
            return
        # One statement for all of them: stored in order, then told in the same order.
        await conn.execute(
            "WITH stored AS (INSERT INTO council.events (at, type, level, data) "
            "SELECT * FROM unnest(%s::timestamptz[], %s::text[], %s::text[], %s::jsonb[])) "
            "SELECT count(pg_notify(%s, notice)) FROM unnest(%s::text[]) AS notice",
            (
                [event.ts for event in stored],
                [str(event.type) for event in stored],
                [str(event.level) for event in stored],
                [Jsonb(event.data) for event in stored],
                CHANNEL,
                [encode(event, self.origin) for event in stored],
            ),
        )

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
        """Hand ``event`` to this process's subscribers now, and store it with the next
        transaction of this store, or on its own within ``EMITTED_WAIT`` seconds (module
        doc); never waits for the database, as the file backend's log does not."""
        self._emitted.append(masked_model(event))
        if len(self._emitted) > MAX_EMITTED:  # the database away for long: the oldest go
            del self._emitted[: len(self._emitted) - MAX_EMITTED]
            log.warning("the state database is away: older events were not stored")
        if self._storing is None or self._storing.done():
            self._storing = asyncio.get_running_loop().create_task(
                self._store_emitted_soon(), name="council-events"
            )
        self.notify([event])

    async def store_emitted(self) -> None:
        """Store the events emitted and not stored yet, in one transaction of their own."""
        carried = self._take_emitted()
        if not carried:
            return
        try:
            # Not waited to the disk, as the file backend's log is not fsynced (module doc).
            async with self.tx(durable=False) as conn:
                await self.record_events(conn, [], carried)
        except BaseException:
            self._give_back(carried)
            raise

    async def close_events(self) -> None:
        """Stop storing in the background; the caller stores what is left."""
        task, self._storing = self._storing, None
        if task is not None and not task.done():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task

    async def _store_emitted_soon(self) -> None:
        pause = EMITTED_WAIT
        while True:
            await asyncio.sleep(pause)
            try:
                await self.store_emitted()
            except psycopg.Error as exc:  # away: the next transaction or attempt takes them
                log.debug("events not stored yet: %s", exc)
                pause = min(2.0, pause * 4)
                continue
            return

    def _take_emitted(self) -> list[Event]:
        taken, self._emitted = self._emitted, []
        return taken

    def _give_back(self, carried: list[Event]) -> None:
        """Events a transaction carried that did not commit: first in line again."""
        if carried:
            self._emitted[:0] = carried


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


def as_stored(record: M) -> tuple[M, Jsonb]:
    """``record`` as it is stored (masked where it held a known secret's value: the same
    object where it held none) and its document: a write hands back what the row holds, so
    no caller holds more than the store does."""
    stored = masked_model(record)
    return stored, Jsonb(stored.model_dump(mode="json"))


async def _roll_back(conn: Conn) -> None:
    """End a transaction of ``tx`` that did not commit; a connection that cannot say is
    closed (the pool drops it, and the server ends its transaction with it)."""
    try:
        if conn.info.transaction_status != TransactionStatus.IDLE:
            await conn.rollback()
    except Exception:  # a broken or interrupted connection: nothing of it was committed
        await conn.close()


async def _settings(conn: Conn, snapshot: bool, durable: bool) -> None:
    """What a transaction of ``tx`` sets before its first query."""
    if snapshot:
        await conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ")
    if not durable:
        await conn.execute("SET LOCAL synchronous_commit TO off")


class _SyncedCursor(AsyncCursor[Any]):
    """A cursor of a pipelined transaction of ``tx`` whose wait for its rows sends a Sync with
    what is pending, where psycopg would send a Flush: the server then says it is ready, and
    its transaction is ``idle in transaction`` while the client holds it between round trips,
    so ``idle_in_transaction_session_timeout`` ends it if the client stalls (module doc).
    Not one round trip more: the Sync travels with the statements the client waits for."""

    async def fetchone(self) -> Any:
        await self._synced()
        return await super().fetchone()

    async def fetchmany(self, size: int = 0) -> list[Any]:
        await self._synced()
        return await super().fetchmany(size)

    async def fetchall(self) -> list[Any]:
        await self._synced()
        return await super().fetchall()

    async def __anext__(self) -> Any:
        await self._synced()
        return await super().__anext__()

    async def scroll(self, value: int, mode: str = "relative") -> None:
        await self._synced()
        await super().scroll(value, mode)

    async def _synced(self) -> None:
        pipeline = _pipelines.get(self.connection)
        if pipeline is not None and self.pgresult is None:
            # Sends what is queued and a Sync, and sets every answer up to it on its cursor;
            # the first statement that failed is raised here (its transaction is aborted).
            await pipeline.sync()


# The pipeline of each open transaction of ``tx`` (what ``_SyncedCursor`` syncs).
_pipelines: WeakKeyDictionary[Conn, AsyncPipeline] = WeakKeyDictionary()

# The clock of each open transaction of ``tx``: its ``SELECT now()``, sent with the ``BEGIN``.
_clocks: WeakKeyDictionary[Conn, AsyncCursor[Any] | datetime] = WeakKeyDictionary()


def _utc(moment: datetime) -> datetime:
    return moment.astimezone(UTC)
