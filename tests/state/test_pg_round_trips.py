"""What one store call costs the PostgreSQL backend in round trips to the server, counted from
libpq's own trace of the connection (every message each way), never timed: a transaction's
``BEGIN``, clock and first read travel together, its writes, events and ``COMMIT`` together
(``state.postgres.core``); a read outside a transaction is one round trip; an event stored on
its own is stored with the next write, or alone without waiting for the server's disk; every
record write does wait for it. A refused write commits nothing and leaves the connection fit
for the next call."""

from __future__ import annotations

import tempfile
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import anyio
import psycopg
import pytest
from psycopg import pq
from psycopg_pool import AsyncConnectionPool

from orchestrator.errors import StateError, VersionConflict
from orchestrator.events import Event
from orchestrator.events.tasks import TaskDispatched
from orchestrator.state.postgres.connection import open_pool
from orchestrator.state.postgres.core import EMITTED_WAIT, PgCore
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.state.transactions import PutRecord, RecordWrite, UpdateTask

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]


class Traced:
    """One store over a pool of one connection, whose protocol messages are traced."""

    def __init__(self, pool: AsyncConnectionPool[Any], store: PostgresStateStore) -> None:
        self.pool = pool
        self.store = store

    async def trace(self, call: Callable[[], Awaitable[object]]) -> list[str]:
        """The trace lines of ``call`` (``F``: sent by the client, ``B``: by the server)."""
        with tempfile.TemporaryFile("w+") as out:
            async with self.pool.connection() as conn:
                conn.pgconn.trace(out.fileno())
                conn.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
            try:
                await call()
            finally:
                async with self.pool.connection() as conn:
                    conn.pgconn.untrace()
            out.seek(0)
            return [line for line in out.read().splitlines() if line[:1] in "FB"]

    async def round_trips(self, call: Callable[[], Awaitable[object]]) -> int:
        return round_trips(await self.trace(call))


def round_trips(lines: list[str]) -> int:
    """How many times the client sent something and then waited for the server's answer."""
    trips, last = 0, ""
    for line in lines:
        side = line[0]
        if side == "B" and last == "F":
            trips += 1
        last = side
    return trips


def unsynced_waits(lines: list[str]) -> int:
    """How many times the client waited for the server without a Sync among what it sent:
    a wait that leaves the server's transaction ``active``, which no idle timeout ends
    (``state.postgres.core``)."""
    waits, synced, last = 0, False, ""
    for line in lines:
        side = line[0]
        if side == "F":
            synced = synced or "\tSync" in line
        elif last == "F":
            waits += not synced
            synced = False
        last = side
    return waits


def statements(lines: list[str]) -> list[str]:
    return [line.split('"')[3] for line in lines if "\tParse\t" in line]


@asynccontextmanager
async def traced_store(dsn: str) -> AsyncIterator[Traced]:
    pool = await open_pool(dsn, min_size=1, max_size=1)
    async with PostgresStateStore(pool) as store:
        yield Traced(pool, store)


@pytest.fixture
async def traced(pg_dsn: str) -> AsyncIterator[Traced]:
    async with traced_store(pg_dsn) as found:
        await found.store.create_session({}, ["t1"], "s1")
        yield found


async def test_a_write_is_two_round_trips_and_a_read_one(traced: Traced) -> None:
    store = traced.store
    assert await traced.round_trips(lambda: store.put_record("ns", "k", {"x": 1})) == 2
    assert await traced.round_trips(lambda: store.put_record("ns", "k", {"x": 2}, 1)) == 2
    assert await traced.round_trips(lambda: store.get_record("ns", "k")) == 1
    assert await traced.round_trips(lambda: store.update_task_state("t1", {"priority": 3})) == 2
    assert await traced.round_trips(lambda: store.get_task_state("t1")) == 1
    assert await traced.round_trips(lambda: store.delete_record("ns", "k", 2)) == 2
    assert await traced.round_trips(lambda: store.list_records("ns")) == 1
    lines = await traced.trace(lambda: store.put_record("ns", "k", {"x": 4}))
    assert round_trips(lines) == 2
    assert unsynced_waits(lines) == 0


async def test_a_claim_and_its_renewal_and_release(traced: Traced) -> None:
    store = traced.store
    claims: list[Any] = []

    async def claim() -> None:
        claims.append(await store.acquire_claim("t1", "me", 30.0, {"status": "running"}))

    # The row locked with the clock and the fencing token, then the writes with COMMIT;
    # each wait ends with a Sync, so a stall between them leaves the server idle.
    lines = await traced.trace(claim)
    assert round_trips(lines) == 2
    assert unsynced_waits(lines) == 0
    token = claims[0].token
    assert await traced.round_trips(lambda: store.renew_claim("t1", token, 30.0)) == 2
    assert await traced.round_trips(lambda: store.release_claim("t1", token)) == 2


async def test_an_event_goes_with_the_next_write_or_alone_not_waited_to_disk(
    traced: Traced,
) -> None:
    store = traced.store
    heard: list[Event] = []
    store.subscribe(heard.append)
    event = TaskDispatched(task_id="t1", adapter="a", attempt=1, branch="b", phase="build")
    # Emitted: its subscribers have it at once, and the database is not asked.
    assert await traced.round_trips(lambda: store.emit(event)) == 0
    assert [e.type for e in heard] == ["task.dispatched"]
    # The next write carries it: stored before the write's own event, in one statement, in
    # the write's two round trips, and waited to the disk with it.
    lines = await traced.trace(lambda: store.update_task_state("t1", {"priority": 4}))
    assert round_trips(lines) == 2
    sent = statements(lines)
    assert not any("synchronous_commit" in s for s in sent)
    assert sum("INSERT INTO council.events" in s for s in sent) == 1
    assert (await _stored_types(traced))[-2:] == ["task.dispatched", "state.updated"]
    # With no write to carry it, it is stored alone, in one round trip, not waited to disk.
    await store.emit(event)
    lines = await traced.trace(lambda: anyio.sleep(EMITTED_WAIT * 10))
    assert round_trips(lines) == 1
    assert "SET LOCAL synchronous_commit TO off" in statements(lines)
    assert (await _stored_types(traced))[-1] == "task.dispatched"


async def test_an_event_no_transaction_committed_is_stored_still(traced: Traced) -> None:
    store = traced.store
    await store.put_record("ns", "k", {"x": 1})
    await store.emit(Event(type="custom.first", data={}))
    with pytest.raises(VersionConflict):
        await store.put_record("ns", "k", {"x": 2}, 7)  # carried it, did not commit
    await store.emit(Event(type="custom.second", data={}))
    await store.put_record("ns", "k", {"x": 2}, 1)
    stored = await _stored_types(traced)
    assert stored[-3:] == ["custom.first", "custom.second", "state.updated"]


async def test_closing_the_store_stores_what_was_emitted(pg_dsn: str) -> None:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.emit(Event(type="custom.last", data={}))
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        cursor = await conn.execute("SELECT type FROM council.events ORDER BY id")
        assert [row[0] for row in await cursor.fetchall()] == ["custom.last"]


async def _stored_types(traced: Traced) -> list[str]:
    async with traced.pool.connection() as conn:
        cursor = await conn.execute("SELECT type FROM council.events ORDER BY id")
        return [str(row[0]) for row in await cursor.fetchall()]


async def test_a_refused_write_commits_nothing_and_the_connection_goes_on(
    traced: Traced,
) -> None:
    store = traced.store
    await store.put_record("ns", "k", {"x": 1})
    with pytest.raises(VersionConflict):
        await store.put_record("ns", "k", {"x": 2}, 7)  # refused in Python, mid-transaction
    with pytest.raises(VersionConflict):
        await store.put_record("ns", "new", {"x": 2}, 3)  # absent: refused before writing
    record = await store.get_record("ns", "k")
    assert record is not None and record.data == {"x": 1} and record.version == 1
    assert await store.get_record("ns", "new") is None
    assert await traced.round_trips(lambda: store.put_record("ns", "k", {"x": 3}, 1)) == 2
    history = await store.record_history("records/ns", "k")
    assert [entry["data"] for entry in history] == [{"x": 3}, {"x": 1}]


async def test_a_statement_the_server_refuses_rolls_the_whole_transaction_back(
    traced: Traced,
) -> None:
    """An error the server raises among pipelined writes (a NUL character, which ``jsonb``
    refuses) is raised at the commit's round trip, and nothing of the transaction, the
    writes sent before it included, is committed."""
    store = traced.store
    before = await store.get_task_state("t1")
    assert before is not None
    refused: list[RecordWrite] = [
        UpdateTask("t1", {"priority": 9}),
        PutRecord("ns", "bad", {"x": "a\x00b"}),
    ]
    with pytest.raises(psycopg.Error):
        await store.write_many(refused)
    after = await store.get_task_state("t1")
    assert after == before
    assert await store.get_record("ns", "bad") is None
    assert await traced.round_trips(lambda: store.update_task_state("t1", {"priority": 9})) == 2
    task = await store.get_task_state("t1")
    assert task is not None and task.priority == 9 and task.version == before.version + 1


async def test_an_error_caught_inside_a_transaction_never_passes_for_a_commit(
    traced: Traced,
) -> None:
    """Each wait syncs, so a statement's error leaves the transaction aborted, and a COMMIT
    sent after it rolls back without an error of its own: ``tx`` says so rather than return
    as if it had committed, and nothing of it is written."""
    core = PgCore(traced.pool)
    with pytest.raises(StateError, match="did not commit"):
        async with core.tx() as conn:
            await conn.execute(
                "INSERT INTO council.records (namespace, key, version, doc) "
                "VALUES ('ns', 'lost', 1, '{}')"
            )
            with pytest.raises(psycopg.errors.DivisionByZero):
                await (await conn.execute("SELECT 1 / 0")).fetchone()
    assert await traced.store.get_record("ns", "lost") is None
    assert await traced.round_trips(lambda: traced.store.put_record("ns", "k", {"x": 1})) == 2


async def test_a_sweep_with_nothing_lapsed_is_one_transaction(traced: Traced) -> None:
    # Its look for transactions stopped before their commit (``state.postgres.claims``) goes
    # with its own read: one BEGIN and COMMIT, the clock first, then both reads at once.
    lines = await traced.trace(traced.store.sweep_expired_claims)
    assert statements(lines).count("BEGIN") == 1  # two before
    assert round_trips(lines) == 3
    assert unsynced_waits(lines) == 0
