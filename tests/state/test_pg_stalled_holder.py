"""A workstation that stops in the middle of a transaction (SIGSTOP, a suspended laptop, a
debugger) while it holds rows locked ``FOR UPDATE``: the server sees its transaction ``idle in
transaction`` between round trips (each wait of a pipelined transaction ends with a Sync,
``state.postgres.core``), so ``idle_in_transaction_session_timeout`` ends it and frees the
rows for the teammates waiting; the holder, once it resumes, commits nothing of it, and its
store call is tried again from its first read, where the version check sees what the others
wrote meanwhile. Never timed: each side waits for the other's outcome."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import AsyncIterator
from typing import Any

import anyio
import psycopg
import pytest
from psycopg_pool import AsyncConnectionPool

from orchestrator.models import ClaimStatus
from orchestrator.state.postgres import claims, connection
from orchestrator.state.postgres.connection import APPLICATION, open_pool
from orchestrator.state.postgres.core import PgCore
from orchestrator.state.postgres.keyed import read_record
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.timing import patience

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]

SHORT_IDLE_MS = "300"  # the server's idle-in-transaction limit where a test stalls a holder

_ROW = "WHERE namespace = 'ns' AND key = 'k'"


@pytest.fixture
async def pool(pg_dsn: str) -> AsyncIterator[AsyncConnectionPool[Any]]:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.put_record("ns", "k", {"by": "first"})
    opened = await open_pool(pg_dsn, min_size=1, max_size=1)
    try:
        yield opened
    finally:
        await opened.close()


async def _state_of(dsn: str, pid: int) -> str | None:
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
        cursor = await watcher.execute("SELECT state FROM pg_stat_activity WHERE pid = %s", (pid,))
        row = await cursor.fetchone()
        return None if row is None else str(row[0])


async def test_between_round_trips_the_server_sees_the_transaction_idle(
    pool: AsyncConnectionPool[Any], pg_dsn: str
) -> None:
    core = PgCore(pool)
    async with core.tx() as conn:
        record = await read_record(conn, "ns", "k", lock=True)
        assert record is not None and record.data == {"by": "first"}
        # The locking read was answered and the server said it is ready: not ``active``
        # (waiting for the client's next message), which no idle timeout would ever end.
        assert await _state_of(pg_dsn, conn.info.backend_pid) == "idle in transaction"
        await core.now(conn)  # its clock came with the read: no wait, still idle
        assert await _state_of(pg_dsn, conn.info.backend_pid) == "idle in transaction"


async def test_a_holder_stalled_after_its_locking_read_frees_its_lock_and_commits_nothing(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.put_record("ns", "k", {"by": "first"})
    monkeypatch.setitem(connection._LIMITS, "idle_in_transaction_session_timeout", SHORT_IDLE_MS)
    stalled = await open_pool(pg_dsn, min_size=1, max_size=1)
    core = PgCore(stalled)
    teammate_wrote = anyio.Event()
    holding = anyio.Event()
    outcome: list[BaseException] = []

    async def holder() -> None:
        try:
            async with core.tx() as conn:
                await read_record(conn, "ns", "k", lock=True)
                holding.set()
                await teammate_wrote.wait()  # stalled here, the row locked
                await conn.execute(f"UPDATE council.records SET version = 100 {_ROW}")
        except psycopg.Error as exc:
            outcome.append(exc)

    async def teammate() -> None:
        # Only once the holder has the row: on a loaded machine the teammate could otherwise
        # lock, write and commit first, and the holder then write after it, never stalled.
        await holding.wait()
        async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
            await conn.execute("SET lock_timeout = '20s'")
            # Waits for the holder's lock: granted once the server ended the stalled side.
            row = await (
                await conn.execute(f"SELECT version FROM council.records {_ROW} FOR UPDATE")
            ).fetchone()
            assert row == (1,)
            await conn.execute(f"UPDATE council.records SET version = 50 {_ROW}")
            await conn.commit()
        teammate_wrote.set()

    try:
        with anyio.fail_after(patience(25)):
            async with anyio.create_task_group() as group:
                group.start_soon(holder)
                await anyio.sleep(0)
                group.start_soon(teammate)
    finally:
        await stalled.close()
    # The holder's transaction was ended under it: its write and commit failed, cleanly.
    assert len(outcome) == 1
    assert isinstance(
        outcome[0], psycopg.OperationalError | psycopg.errors.IdleInTransactionSessionTimeout
    )
    async with await psycopg.AsyncConnection.connect(pg_dsn) as conn:
        assert await (
            await conn.execute(f"SELECT version FROM council.records {_ROW}")
        ).fetchone() == (50,)


_PAUSED_WRITER = textwrap.dedent(
    """
    import asyncio, os, signal, sys

    from orchestrator.errors import VersionConflict
    from orchestrator.plugins.record_rule import RecordRule
    from orchestrator.state.postgres import connection

    connection._LIMITS["idle_in_transaction_session_timeout"] = sys.argv[2]
    from orchestrator.state.postgres.store import PostgresStateStore

    paused = []

    def pause(kind, key, before, after):
        # Checked after the row was read FOR UPDATE, before the write: the process stops.
        if not paused:
            paused.append(True)
            os.kill(os.getpid(), signal.SIGSTOP)
        return None

    async def main():
        async with await PostgresStateStore.connect(sys.argv[1]) as store:
            store.validators.add(RecordRule("test.pause", pause, frozenset({"records/ns"})))
            try:
                await store.put_record("ns", "k", {"by": "paused"}, 1)
            except VersionConflict as exc:
                print("conflict", exc.actual)
                return
            print("written")

    asyncio.run(main())
    """
)


async def test_a_stopped_workstation_holds_no_lock_and_resumes_into_a_version_conflict(
    pg_dsn: str,
) -> None:
    """The real thing: another process stopped with SIGSTOP right after its locking read; a
    teammate's write of the same record goes through, and the stopped writer, resumed, finds
    its transaction ended, tries again and is refused on the version it expected."""
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.put_record("ns", "k", {"by": "first"})
        child = subprocess.Popen(
            [sys.executable, "-c", _PAUSED_WRITER, pg_dsn, SHORT_IDLE_MS],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            _, status = await anyio.to_thread.run_sync(os.waitpid, child.pid, os.WUNTRACED)
            assert os.WIFSTOPPED(status), f"the writer ended before its pause: {status}"
            with anyio.fail_after(patience(20)):
                written = await store.put_record("ns", "k", {"by": "teammate"}, 1)
            assert written.version == 2
            child.send_signal(signal.SIGCONT)
            out, err = await anyio.to_thread.run_sync(
                lambda: child.communicate(timeout=patience(20))
            )
        finally:
            if child.poll() is None:
                child.send_signal(signal.SIGCONT)
                child.kill()
                child.wait()
        assert child.returncode == 0, err
        assert out.split() == ["conflict", "2"]
        record = await store.get_record("ns", "k")
        assert record is not None and record.data == {"by": "teammate"} and record.version == 2
        history = await store.record_history("records/ns", "k")
        assert {"by": "paused"} not in [entry["data"] for entry in history]


async def test_a_holder_stopped_between_its_write_and_its_commit_is_cut_off_by_the_sweep(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A store transaction sends its writes and its commit without waiting between them: a
    workstation stopped there leaves its server process *active*, waiting for the rest of the
    pipeline, which no timeout of PostgreSQL 15 ends; its row stays locked and the sweep's
    ``SKIP LOCKED`` passed over the lapsed claim for good (a team run waited for a stopped
    teammate until it went on). The sweep now ends such a process, and takes the claim."""
    monkeypatch.setattr(claims, "IDLE_IN_TRANSACTION", int(SHORT_IDLE_MS))
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.create_session({}, ["t1"], session_id="s1")
        assert await store.acquire_claim("t1", "stopped-workstation", 0.01) is not None
        # The stopped workstation's transaction: its write sent, its commit never.
        stopped = await psycopg.AsyncConnection.connect(pg_dsn, application_name=APPLICATION)
        try:
            raw = stopped.pgconn
            raw.enter_pipeline_mode()
            raw.send_query_params(b"BEGIN", None)
            raw.send_query_params(
                b"UPDATE council.tasks SET version = version WHERE task_id = $1", [b"t1"]
            )
            raw.flush()
            with anyio.fail_after(patience(20)):
                while await _waiting_mid_statement(pg_dsn, raw.backend_pid) is not True:
                    await anyio.sleep(0.05)
                swept: list[str] = []
                while not swept:  # skipped while locked; its holder cut off once stopped long
                    swept = [claim.task_id for claim in await store.sweep_expired_claims()]
                    await anyio.sleep(0.05)
            assert swept == ["t1"]
            assert await _state_of(pg_dsn, raw.backend_pid) is None  # its process ended
            task = await store.get_task_state("t1")
            assert task is not None and task.claim is not None
            assert task.claim.status == ClaimStatus.EXPIRED
        finally:
            with contextlib.suppress(psycopg.Error):
                await stopped.close()


async def test_the_sweep_leaves_a_running_transaction_and_other_applications_alone(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Waiting for its client mid-statement for less than the limit (a running workstation),
    or another program's connection on the same database: never cut off."""
    monkeypatch.setattr(claims, "IDLE_IN_TRANSACTION", 60_000)
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.create_session({}, ["t1", "t2"], session_id="s1")
        holders = []
        for task_id, name in (("t1", APPLICATION), ("t2", "someone-else")):
            conn = await psycopg.AsyncConnection.connect(pg_dsn, application_name=name)
            conn.pgconn.enter_pipeline_mode()
            conn.pgconn.send_query_params(b"BEGIN", None)
            conn.pgconn.send_query_params(
                b"UPDATE council.tasks SET version = version WHERE task_id = $1", [task_id.encode()]
            )
            conn.pgconn.flush()
            holders.append(conn)
        try:
            with anyio.fail_after(patience(20)):
                for conn in holders:
                    while await _waiting_mid_statement(pg_dsn, conn.pgconn.backend_pid) is not True:
                        await anyio.sleep(0.05)
            await store.sweep_expired_claims()
            for conn in holders:
                assert await _waiting_mid_statement(pg_dsn, conn.pgconn.backend_pid) is True
        finally:
            for conn in holders:
                with contextlib.suppress(psycopg.Error):
                    await conn.close()


async def _waiting_mid_statement(dsn: str, pid: int) -> bool | None:
    """Is that server process in a transaction, waiting for its client mid-statement, holding
    a row lock? None once it is gone."""
    async with await psycopg.AsyncConnection.connect(dsn, autocommit=True) as watcher:
        cursor = await watcher.execute(
            "SELECT state = 'active' AND wait_event = 'ClientRead' AND xact_start IS NOT NULL "
            "AND EXISTS (SELECT 1 FROM pg_locks WHERE pid = %s AND relation = "
            "'council.tasks'::regclass AND mode = 'RowExclusiveLock') "
            "FROM pg_stat_activity WHERE pid = %s",
            (pid, pid),
        )
        row = await cursor.fetchone()
        return None if row is None else bool(row[0])
