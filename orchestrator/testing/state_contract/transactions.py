"""The contract of multi-record transactions (``StateStore.write_many``), for every backend.

A mixin of ``StateStoreContract``: its tests take the backend's ``store`` fixture. The test
of concurrent transactions opens a second store object on the same data (``another_store``),
as a second process would.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any, ClassVar

import anyio
import pytest

from orchestrator.errors import RecordNotFound, StaleClaim, StateError, VersionConflict
from orchestrator.events import Event, EventType
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import (
    DeleteRecord,
    PutRecord,
    RecordWrite,
    UpdateSession,
    UpdateTask,
    transaction,
)

__all__ = ["TransactionsContract", "another_store"]


@contextlib.asynccontextmanager
async def another_store(store: StateStore) -> AsyncIterator[StateStore]:
    """A second store object on ``store``'s data, sharing nothing with it in memory."""
    from orchestrator.state.file.store import FileStateStore
    from orchestrator.state.postgres.store import PostgresStateStore

    if isinstance(store, FileStateStore):
        core = store.core
        async with FileStateStore(
            core.root, events_path=core.events.path, anchor=core.anchor
        ) as other:
            yield other
    elif isinstance(store, PostgresStateStore):
        dsn = str(store._core.pool.conninfo)  # the test kit may look inside the store
        async with await PostgresStateStore.connect(dsn) as other_pg:
            yield other_pg
    else:
        raise TypeError(f"no second store object for {type(store).__name__}")


async def _setup(store: StateStore) -> None:
    """Two tasks in session s1, and two keyed records."""
    await store.create_session({}, ["t1", "t2"], session_id="s1")
    await store.put_record("landings", "t1", {"state": "prepared"})
    await store.put_record("landings", "old", {"state": "stale"})


async def _snapshot(store: StateStore) -> dict[str, Any]:
    t1, t2 = await store.get_task_state("t1"), await store.get_task_state("t2")
    session = await store.get_session("s1")
    records = {r.key: (r.version, r.data) for r in await store.list_records("landings")}
    assert t1 is not None and t2 is not None and session is not None
    return {
        "t1": (t1.version, t1.priority, t1.metadata),
        "t2": (t2.version, t2.priority),
        "s1": (session.version, session.metadata),
        "records": records,
        "t3": await store.get_task_state("t3"),
    }


def _writes(t1_version: int = 1, record_version: int = 1) -> list[RecordWrite]:
    return [
        UpdateTask("t1", {"priority": 7, "metadata": {"landed": True}}, t1_version),
        UpdateTask("t2", {"priority": 3}),
        UpdateTask("t3", {"priority": 1}, 0),  # created by the transaction
        UpdateSession("s1", {"metadata": {"landed": ["t1"]}}, 1),
        PutRecord("landings", "t1", {"state": "pushed"}, record_version),
        DeleteRecord("landings", "old"),
    ]


class TransactionsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_transaction_applies_every_write(self, store: StateStore) -> None:
        await _setup(store)
        done = await store.write_many(_writes())
        assert done.tasks["t1"].version == 2 and done.tasks["t1"].priority == 7
        assert done.tasks["t3"].version == 1
        assert done.sessions["s1"].metadata == {"landed": ["t1"]}
        assert done.sessions["s1"].metrics.total == 2
        assert done.records[("landings", "t1")] is not None
        assert done.records[("landings", "old")] is None
        assert done.deleted == {("landings", "old"): True}
        after = await _snapshot(store)
        assert after["t1"] == (2, 7, {"landed": True})
        assert after["t2"] == (2, 3)
        assert after["s1"] == (2, {"landed": ["t1"]})
        assert after["records"] == {"t1": (2, {"state": "pushed"})}
        assert after["t3"] is not None and after["t3"].priority == 1

    async def test_one_version_conflict_applies_none(self, store: StateStore) -> None:
        await _setup(store)
        before = await _snapshot(store)
        with pytest.raises(VersionConflict):
            await store.write_many(_writes(record_version=5))  # the last record to lock
        with pytest.raises(VersionConflict):
            await store.write_many(_writes(t1_version=9))  # the first
        assert await _snapshot(store) == before

    async def test_stale_fence_or_missing_session_applies_none(self, store: StateStore) -> None:
        await _setup(store)
        claim = await store.acquire_claim("t2", "me", 60)
        assert claim is not None
        before = await _snapshot(store)
        stale = [*_writes()[:1], UpdateTask("t2", {"priority": 3}, fencing_token=claim.token + 1)]
        with pytest.raises(StaleClaim):
            await store.write_many(stale)
        missing = [*_writes()[:1], UpdateSession("nope", {"metadata": {}})]
        with pytest.raises(RecordNotFound):
            await store.write_many(missing)
        invalid = [*_writes()[:1], UpdateTask("t2", {"priority": "high"})]
        with pytest.raises(StateError):
            await store.write_many(invalid)
        assert await _snapshot(store) == before
        fenced = [UpdateTask("t2", {"priority": 4}, fencing_token=claim.token)]
        assert (await store.write_many(fenced)).tasks["t2"].priority == 4

    async def test_exception_in_the_block_applies_none(self, store: StateStore) -> None:
        await _setup(store)
        before = await _snapshot(store)
        with pytest.raises(RuntimeError, match="changed my mind"):
            async with transaction(store) as txn:
                txn.update_task("t1", {"priority": 9})
                txn.put_record("landings", "t1", {"state": "pushed"})
                txn.delete_record("landings", "old")
                raise RuntimeError("changed my mind")
        assert await _snapshot(store) == before
        async with transaction(store) as txn:
            txn.update_task("t1", {"priority": 9}, 1)
            txn.update_session("s1", {"metadata": {"n": 1}})
        assert txn.committed is not None and txn.committed.tasks["t1"].priority == 9

    async def test_one_record_twice_is_refused(self, store: StateStore) -> None:
        with pytest.raises(StateError, match="twice"):
            await store.write_many([UpdateTask("t1", {}), UpdateTask("t1", {"priority": 1})])
        assert await store.get_task_state("t1") is None

    async def test_concurrent_transactions_serialize(self, store: StateStore) -> None:
        """Two store objects move a counter on three records together, listing them in
        opposite orders, each write expecting the versions it read: no deadlock, no lost
        update, and the three records never disagree."""
        keys = ["a", "b", "c"]
        for key in keys:
            await store.update_task_state(key, {"metadata": {"n": 0}})
        rounds = 12
        conflicts = 0

        async def worker(target: StateStore, order: list[str]) -> None:
            nonlocal conflicts
            done = 0
            while done < rounds:
                states = {k: await target.get_task_state(k) for k in order}
                writes: list[RecordWrite] = []
                for key in order:
                    state = states[key]
                    assert state is not None
                    n = int(state.metadata["n"]) + 1
                    writes.append(UpdateTask(key, {"metadata": {"n": n}}, state.version))
                try:
                    await target.write_many(writes)
                except VersionConflict:
                    conflicts += 1
                    continue
                done += 1

        async with another_store(store) as other:
            with anyio.fail_after(120):
                async with anyio.create_task_group() as group:
                    group.start_soon(worker, store, keys)
                    group.start_soon(worker, other, list(reversed(keys)))
        found = [await store.get_task_state(k) for k in keys]
        assert [t.metadata["n"] for t in found if t] == [2 * rounds] * 3
        assert {t.version for t in found if t} == {2 * rounds + 1}

    async def test_events_only_for_committed_writes(self, store: StateStore) -> None:
        await _setup(store)
        heard: list[Event] = []
        store.subscribe(heard.append)
        try:
            with pytest.raises(VersionConflict):
                await store.write_many(_writes(record_version=5))
            assert not [e for e in heard if e.type == EventType.STATE_UPDATED]
            await store.write_many(_writes())  # subscribers hear it before it returns
        finally:
            store.unsubscribe(heard.append)
        updated = {
            (str(e.data["kind"]), str(e.data["key"]))
            for e in heard
            if e.type == EventType.STATE_UPDATED and not e.data.get("remote")
        }
        assert {("tasks", "t1"), ("tasks", "t2"), ("tasks", "t3"), ("sessions", "s1")} <= updated
        assert any(e.type == EventType.SESSION_UPDATED for e in heard)
