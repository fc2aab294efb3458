"""Notifications between workstations on a real server: a task written through one store
reaches the subscribers of another within milliseconds (marked remote, never twice to the
writer's own), the listener comes back after a database restart and asks for a full read, the
task view marks such a task dirty and wakes its scheduler, and a store closes its listener."""

from __future__ import annotations

import anyio
import psycopg
import pytest

from orchestrator.events import Event, EventType
from orchestrator.models import TaskStatus
from orchestrator.scheduler.view import TaskView
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.pg_tier import TestDatabase, until
from tests.support.timing import patience

pytestmark = pytest.mark.postgres


def _task_updates(events: list[Event], key: str) -> list[Event]:
    return [
        e
        for e in events
        if e.type == EventType.STATE_UPDATED
        and e.data.get("kind") == "tasks"
        and e.data.get("key") == key
    ]


async def test_a_write_on_one_store_reaches_the_other_once(
    stores: tuple[PostgresStateStore, PostgresStateStore],
) -> None:
    a, b = stores
    heard_a: list[Event] = []
    heard_b: list[Event] = []
    a.subscribe(heard_a.append)
    b.subscribe(heard_b.append)
    with anyio.fail_after(patience(5)):
        await a.listen()
        await b.listen()
    await a.create_session({}, ["t1"], session_id="s1")
    await a.create_checkpoint("s1", "x")
    await a.update_task_state("t1", {"priority": 3})
    await until(
        lambda: any(e.data.get("version") == 2 for e in _task_updates(heard_b, "t1")), seconds=1.0
    )
    remote = [e for e in heard_b if e.data.get("version") == 2]
    assert [e.data for e in remote] == [
        {"kind": "tasks", "key": "t1", "version": 2, "fields": ["priority"], "remote": True}
    ]
    # Only task writes and resyncs come from elsewhere: a notice is too small to stand for a
    # session or checkpoint event, and those are not the view's business.
    assert {e.type for e in heard_b} <= {EventType.STATE_UPDATED, EventType.STATE_RESYNC}
    # A write by b, heard by a, comes after a's own notices on a's connection: once it is
    # heard, a's listener has seen (and dropped) the notices of a's own writes.
    await b.update_task_state("t1", {"priority": 4})
    await until(
        lambda: any(e.data.get("version") == 3 for e in _task_updates(heard_a, "t1")), seconds=1.0
    )
    own = [e for e in _task_updates(heard_a, "t1") if e.data.get("version") == 2]
    assert [e.data.get("remote") for e in own] == [None]  # once, from the commit itself
    assert [e.data.get("remote") for e in _task_updates(heard_a, "t1")][-1] is True


async def test_the_listener_comes_back_after_a_restart_and_asks_for_a_full_read(
    stores: tuple[PostgresStateStore, PostgresStateStore], pg_server: TestDatabase
) -> None:
    a, b = stores
    heard: list[Event] = []
    b.subscribe(heard.append)

    def resyncs() -> int:
        return sum(e.type == EventType.STATE_RESYNC for e in heard)

    with anyio.fail_after(patience(5)):
        await b.listen()
    assert resyncs() == 1  # the first LISTEN: writes before it may have gone unheard
    await anyio.to_thread.run_sync(pg_server.restart)
    await until(lambda: resyncs() == 2, seconds=15)
    resync = [e for e in heard if e.type == EventType.STATE_RESYNC][-1]
    assert resync.data["remote"] is True
    with anyio.fail_after(patience(5)):
        await b.listen()  # in place again
    await a.create_session({}, ["t1"], session_id="s1")  # the pool reconnects on its own
    await a.update_task_state("t1", {"status": TaskStatus.CANCELLED})
    await until(
        lambda: any(e.data.get("version") == 2 for e in _task_updates(heard, "t1")), seconds=1.0
    )


async def test_the_view_marks_a_task_another_store_wrote_and_wakes_its_scheduler(
    stores: tuple[PostgresStateStore, PostgresStateStore],
) -> None:
    a, b = stores
    await a.create_session({}, ["t1", "t2"], session_id="s1")
    await a.create_session({}, ["other"], session_id="s2")
    wakes: list[int] = []
    view = TaskView(b, "s1", refresh_every=3600, on_remote=lambda: wakes.append(1))
    b.subscribe(view.on_event)
    with anyio.fail_after(patience(5)):
        await b.listen()
    await view.current()
    wakes.clear()  # the first LISTEN's resync woke it once
    claim = await a.acquire_claim("t1", "ws-a", 60, {"status": TaskStatus.RUNNING})
    assert claim is not None
    await until(lambda: len(wakes) == 1, seconds=1.0)
    assert (await view.current())["t1"].status == TaskStatus.RUNNING
    await a.renew_claim("t1", claim.token, 60)  # the queue never reads a renewal
    await a.update_task_state("other", {"priority": 9})  # another session's task
    await a.update_task_state("t1", {"status": TaskStatus.CANCELLED}, fencing_token=claim.token)
    await until(lambda: len(wakes) == 2, seconds=1.0)
    seen = await view.current()  # no full read (an hour away): only the dirty task
    assert seen["t1"].status == TaskStatus.CANCELLED
    assert set(seen) == {"t1", "t2"}
    await anyio.sleep(0.05)
    assert len(wakes) == 2  # the renewal and the other session's write woke nobody


async def test_a_resync_makes_the_next_look_a_full_read(
    stores: tuple[PostgresStateStore, PostgresStateStore],
) -> None:
    a, b = stores
    await a.create_session({}, ["t1"], session_id="s1")
    view = TaskView(b, "s1", refresh_every=3600)
    assert (await view.current())["t1"].status == TaskStatus.QUEUED
    await a.update_task_state("t1", {"status": TaskStatus.CANCELLED})  # unheard: no listener
    assert (await view.current())["t1"].status == TaskStatus.QUEUED
    b.subscribe(view.on_event)
    with anyio.fail_after(patience(5)):
        await b.listen()  # the LISTEN's resync
    assert (await view.current())["t1"].status == TaskStatus.CANCELLED


async def test_a_store_closes_its_listener_and_its_connection(pg_dsn: str) -> None:
    def listening_backends() -> int:
        with psycopg.connect(pg_dsn, autocommit=True) as conn:
            row = conn.execute(
                "SELECT count(*) FROM pg_stat_activity "
                "WHERE datname = current_database() AND query LIKE 'LISTEN %%'"
            ).fetchone()
        assert row is not None
        return int(row[0])

    store = await PostgresStateStore.connect(pg_dsn)
    store.subscribe(lambda event: None)
    with anyio.fail_after(patience(5)):
        await store.listen()
    assert listening_backends() == 1
    await store.aclose()
    await until(lambda: listening_backends() == 0, seconds=1.0)
    store.subscribe(lambda event: None)  # a closed store does not start listening again
    with pytest.raises(RuntimeError, match="closed store"):
        await store.listen()
