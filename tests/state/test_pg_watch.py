"""Watchers on PostgreSQL beyond the shared contract: what a notice tells a watcher, a watch
told to read again when its listening connection was lost (and hearing on after it), and a
clone's own namespaces waited for on its own disk."""

from __future__ import annotations

from pathlib import Path

import anyio
import psycopg
import pytest

from orchestrator.state import FileStateStore, RecordChange, RecordRef
from orchestrator.state.changes import RESYNC
from orchestrator.state.local_records import LocalRecords
from orchestrator.state.postgres.notices import record_change
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.timing import patience


def test_a_notice_of_any_record_write_is_a_change_whoever_wrote_it() -> None:
    task = record_change('{"o":"me","t":"state.updated","k":"tasks","key":"t1","v":2}')
    assert task == RecordChange("tasks", "t1", 2)
    keyed = record_change('{"o":"x","t":"state.updated","k":"records/owners","key":"k","v":1}')
    assert keyed == RecordChange("records/owners", "k", 1)
    session = record_change('{"o":"x","t":"state.recovered","k":"sessions","key":"s","v":9}')
    assert session == RecordChange("sessions", "s", 9)
    # Too large to name its key: anything of that kind may have changed.
    assert record_change('{"o":"x","t":"state.updated","k":"tasks"}') == RESYNC
    assert record_change('{"o":"x","t":"task.dispatched"}') is None
    assert record_change("state.updated") is None  # an older workstation's bare type


@pytest.mark.postgres
async def test_a_watch_is_told_to_read_again_when_its_connection_was_lost(pg_dsn: str) -> None:
    async with (
        await PostgresStateStore.connect(pg_dsn) as store,
        await PostgresStateStore.connect(pg_dsn) as other,
        store.watch("tasks/*") as changes,
    ):
        async with await psycopg.AsyncConnection.connect(pg_dsn, autocommit=True) as admin:
            await admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE query LIKE 'LISTEN%' AND datname = current_database()"
            )
        with anyio.fail_after(patience(15)):
            assert RESYNC in await changes.next_batch()
            await other.update_task_state("t1", {})  # heard again, LISTEN in place anew
            heard: list[RecordChange] = []
            while RecordChange("tasks", "t1", 1) not in heard:
                heard += await changes.next_batch()


@pytest.mark.postgres
async def test_a_clones_own_record_is_waited_for_on_its_disk(pg_dsn: str, tmp_path: Path) -> None:
    local = LocalRecords.of(FileStateStore.for_repo(tmp_path), {"worktrees"})
    async with await PostgresStateStore.connect(pg_dsn, local=local) as store:
        await store.put_record("worktrees", "w1", {"path": "a"})

        async def write_on_disk() -> None:
            await anyio.sleep(0.2)
            async with FileStateStore.for_repo(tmp_path) as disk:
                await disk.put_record("worktrees", "w1", {"path": "b"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(write_on_disk)
            with anyio.fail_after(patience(15)):
                found = await store.wait_for_update(RecordRef.record("worktrees", "w1"), 1, 15)
        assert found is not None and found.data == {"path": "b"}
