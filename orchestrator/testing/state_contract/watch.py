"""The watch part of the state store contract: ``wait_for_update`` and ``watch``.

A mixin of ``StateStoreContract``. Besides ``store`` it needs a ``store_twin`` fixture: a
second store object on the same data, as another process would open it (the file backend: a
second ``FileStateStore`` on the same directory; PostgreSQL: a second pool), so every change
a test waits for travels the way another process's would: through the event log, or through
LISTEN/NOTIFY.
"""

from __future__ import annotations

import asyncio
import os
from typing import ClassVar

import anyio
import pytest

from orchestrator.models import TaskStatus
from orchestrator.state.changes import RecordChange, RecordRef
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import transaction

__all__ = ["WatchContract"]

_PATIENCE = 20.0  # seconds: far above any wake-up, a bound on a test that would hang


def _open_fds() -> int:
    try:
        return len(os.listdir("/proc/self/fd"))
    except FileNotFoundError:
        return len(os.listdir("/dev/fd"))


class WatchContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_waiter_is_woken_by_another_stores_write(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        await store.update_task_state("t1", {"priority": 1})
        found: list[object] = []

        async def waiter() -> None:
            found.append(await store.wait_for_update(RecordRef.task("t1"), 1, _PATIENCE))

        async with anyio.create_task_group() as tg:
            tg.start_soon(waiter)
            await anyio.sleep(0.3)  # the waiter is waiting by now
            assert found == []
            written = await store_twin.update_task_state("t1", {"status": TaskStatus.RUNNING})
        assert found == [written]

    async def test_every_kind_of_record_can_be_waited_for(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        await store.create_session({}, ["t1"], session_id="s1")
        await store.put_record("owners", "k1", {"who": "a"})

        async def session_update() -> None:
            await anyio.sleep(0.2)
            await store_twin.update_session("s1", {"status": "completed"})

        async def record_update() -> None:
            await anyio.sleep(0.2)
            await store_twin.put_record("owners", "k1", {"who": "b"})

        async with anyio.create_task_group() as tg:
            tg.start_soon(session_update)
            session = await store.wait_for_update(RecordRef.session("s1"), 1, _PATIENCE)
        assert session is not None and (session.version, session.status) == (2, "completed")
        async with anyio.create_task_group() as tg:
            tg.start_soon(record_update)
            record = await store.wait_for_update(RecordRef.record("owners", "k1"), 1, _PATIENCE)
        assert record is not None and (record.version, record.data) == (2, {"who": "b"})

    async def test_a_record_not_written_in_time_is_none(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        assert await store.wait_for_update(RecordRef.task("t1"), 1, timeout=0.3) is None
        assert await store.wait_for_update(RecordRef.task("absent"), 0, timeout=0.3) is None
        assert await store.wait_for_update(RecordRef.record("ns", "absent"), 0, 0) is None

    async def test_a_record_already_newer_is_returned_at_once(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        second = await store.update_task_state("t1", {"priority": 2})
        with anyio.fail_after(_PATIENCE):
            assert await store.wait_for_update(RecordRef.task("t1"), 1, timeout=0) == second
            assert await store.wait_for_update(RecordRef.task("t1"), 0) == second

    async def test_a_watch_hears_only_what_its_pattern_matches(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        heard: list[RecordChange] = []
        async with store.watch("tasks/a*") as changes:
            await store_twin.update_task_state("b1", {})
            await store_twin.update_task_state("a1", {})
            await store_twin.put_record("tasks-like", "a2", {})
            await store_twin.update_task_state("a2", {})
            await store_twin.update_task_state("a1", {"priority": 3})
            with anyio.fail_after(_PATIENCE):
                async for change in changes:
                    if not change.resync:
                        heard.append(change)
                    if len(heard) == 3:
                        break
        assert [(c.path, c.version) for c in heard] == [
            ("tasks/a1", 1),
            ("tasks/a2", 1),
            ("tasks/a1", 2),
        ]

    async def test_a_watch_names_each_kind_by_its_path(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        paths: list[str] = []
        async with store.watch("*") as changes:
            await store_twin.put_record("owners", "k1", {})
            await store_twin.update_task_state("t9", {})
            with anyio.fail_after(_PATIENCE):
                while len(paths) < 2:
                    paths += [c.path for c in await changes.next_batch() if not c.resync]
        assert paths == ["records/owners/k1", "tasks/t9"]

    async def test_each_write_of_a_transaction_is_heard(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        await store.update_task_state("t1", {})
        await store.update_task_state("t2", {})
        heard: set[tuple[str, int | None]] = set()
        async with store.watch("*") as changes:
            async with transaction(store_twin) as txn:
                txn.update_task("t1", {"priority": 1}, expected_version=1)
                txn.update_task("t2", {"priority": 2}, expected_version=1)
                txn.put_record("owners", "k1", {"who": "a"})
            with anyio.fail_after(_PATIENCE):
                while len(heard) < 3:
                    batch = await changes.next_batch()
                    heard |= {(c.path, c.version) for c in batch if not c.resync}
        assert heard >= {("tasks/t1", 2), ("tasks/t2", 2), ("records/owners/k1", 1)}

    async def test_a_cancelled_watch_leaves_nothing_running(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        # Whatever the stores keep open anyway (a listening connection, the log they append
        # to, a pooled connection) is in place before the baseline is taken.
        await store_twin.update_task_state("t0", {})
        await store_twin.update_task_state("t1", {})  # the file store holds its directory
        await store.wait_for_update(RecordRef.task("t0"), 1, timeout=0.1)
        await anyio.sleep(0.1)
        tasks, fds = len(asyncio.all_tasks()), _open_fds()
        started, heard = anyio.Event(), anyio.Event()

        async def follow() -> None:
            async with store.watch() as changes:
                started.set()
                async for change in changes:
                    if change.path == "tasks/t1":
                        heard.set()

        async with anyio.create_task_group() as tg:
            tg.start_soon(follow)
            await started.wait()
            await store_twin.update_task_state("t1", {})
            with anyio.fail_after(_PATIENCE):
                await heard.wait()
            tg.cancel_scope.cancel()
        await anyio.sleep(0.1)
        assert len(asyncio.all_tasks()) == tasks
        assert _open_fds() == fds
        # And a wait cut short by its caller's own deadline leaves nothing either.
        with anyio.move_on_after(0.2):
            await store.wait_for_update(RecordRef.task("t1"), 5)
        await anyio.sleep(0.1)
        assert len(asyncio.all_tasks()) == tasks
        assert _open_fds() == fds
