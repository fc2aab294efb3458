"""The team's protection layers on the store, against both backends: one owner per path
(released by fence, a dead owner replaced once its claim lapsed) and the merge lock's lease."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from orchestrator.locks.team_files import TeamFiles
from orchestrator.locks.team_merge import NAMESPACE as MERGE_LOCK
from orchestrator.locks.team_merge import TeamMergeLock
from orchestrator.state import FileStateStore, StateStore
from orchestrator.state.postgres.store import PostgresStateStore
from tests.support.timing import patience


@pytest.fixture(params=["file", pytest.param("postgresql", marks=pytest.mark.postgres)])
def database(request: pytest.FixtureRequest) -> str | None:
    """The backend: None for the file store, else a fresh database's URL (a sync fixture:
    the server is started outside any event loop)."""
    return None if request.param == "file" else str(request.getfixturevalue("pg_dsn"))


@pytest.fixture
async def store(database: str | None, tmp_path: Path) -> AsyncIterator[StateStore]:
    if database is None:
        async with FileStateStore(tmp_path / "state") as file_store:
            yield file_store
        return
    async with await PostgresStateStore.connect(database) as pg_store:
        yield pg_store


async def _claimed(store: StateStore, task_id: str, holder: str, lease: float = 60) -> int:
    claim = await store.acquire_claim(task_id, holder, lease)
    assert claim is not None
    return claim.token


async def test_one_live_owner_per_path_all_or_nothing(store: StateStore) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    files = TeamFiles(store)
    token_a = await _claimed(store, "a", "ws1:1:x")
    token_b = await _claimed(store, "b", "ws2:2:y")
    assert await files.take("a", token_a, "ws1:1:x", ["README.md", "src/x.py"]) is None
    refused = await files.take("b", token_b, "ws2:2:y", ["docs/new.md", "src/x.py"])
    assert refused is not None
    assert (refused.path, refused.task_id, refused.holder) == ("src/x.py", "a", "ws1:1:x")
    # Nothing of b's call was kept: docs/new.md is free for anyone.
    assert await files.take("b", token_b, "ws2:2:y", ["docs/new.md"]) is None
    await files.release("b", token_b, ["docs/new.md"])
    # Released by fence: b cannot release a's path, a can.
    await files.release("b", token_b, ["src/x.py"])
    assert await files.take("b", token_b, "ws2:2:y", ["src/x.py"]) is not None
    await files.release("a", token_a, ["README.md", "src/x.py"])
    assert await files.take("b", token_b, "ws2:2:y", ["src/x.py"]) is None


async def test_a_dead_owner_is_replaced_once_its_claim_lapsed(store: StateStore) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    files = TeamFiles(store)
    # A lease long enough that a slow machine still refuses b while a's claim lives.
    lease = patience(1.0)
    dead = await _claimed(store, "a", "ws1:1:x", lease=lease)
    assert await files.take("a", dead, "ws1:1:x", ["src/x.py"]) is None
    token_b = await _claimed(store, "b", "ws2:2:y")
    assert await files.take("b", token_b, "ws2:2:y", ["src/x.py"]) is not None
    await anyio.sleep(lease + 0.1)  # a's workstation died: its lease lapsed
    assert await files.take("b", token_b, "ws2:2:y", ["src/x.py"]) is None
    # a's late release (it comes back) leaves b's ownership alone.
    await files.release("a", dead, ["src/x.py"])
    assert await files.take("a", dead, "ws1:1:x", ["src/x.py"]) is not None


async def test_the_merge_lock_serialises_and_a_dead_holder_lapses(store: StateStore) -> None:
    # A lease no slow machine outlasts while a holds the lock (a waiter gives up after one).
    first = TeamMergeLock(store, "main", "ws1", lease=patience(30))
    second = TeamMergeLock(store, "main", "ws2", lease=patience(30))
    order: list[str] = []
    a_in = anyio.Event()

    async def land(lock: TeamMergeLock, name: str) -> None:
        async with lock.held() as had:
            assert had
            order.append(f"{name} in")
            a_in.set()
            await anyio.sleep(0.1)
            order.append(f"{name} out")

    async with anyio.create_task_group() as group:
        group.start_soon(land, first, "a")
        await a_in.wait()  # b asks once a holds it, however slow the machine
        group.start_soon(land, second, "b")
    assert order == ["a in", "a out", "b in", "b out"]
    assert await store.get_record(MERGE_LOCK, "main") is None
    # A holder that died with the lock: the next one waits one lease, then takes it over.
    heir = TeamMergeLock(store, "main", "ws2", lease=0.5)
    await store.put_record(MERGE_LOCK, "main", {"holder": "dead", "token": "x"}, 0)
    started = time.monotonic()
    async with heir.held() as had:
        assert had
        record = await store.get_record(MERGE_LOCK, "main")
        assert record is not None and record.data["holder"] == "ws2"
    assert time.monotonic() - started >= 0.4  # it waited for the lease (never more: no bound)


class _SlowFirstRead:
    """The store, with its first read of the merge lock slower than the lease (a loaded
    machine, a far database): what the waiter saw must still lapse, not be given up on."""

    def __init__(self, store: StateStore, delay: float) -> None:
        self._store, self._delay, self.reads = store, delay, 0

    async def get_record(self, namespace: str, key: str) -> Any:
        self.reads += 1
        if self.reads == 1:
            await anyio.sleep(self._delay)  # the slowness itself, not a wait for something
        return await self._store.get_record(namespace, key)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._store, name)


async def test_a_dead_holder_is_replaced_even_when_the_first_read_is_slow(
    store: StateStore,
) -> None:
    # Counted from before the first read, the wait ran out the moment that read came back:
    # the waiter gave up (landing without the lock) just before the lapse it waited for, so a
    # dead holder's record was never replaced and every landing after it waited a lease.
    await store.put_record(MERGE_LOCK, "main", {"holder": "dead", "token": "x"}, 0)
    slow = _SlowFirstRead(store, delay=0.3)
    heir = TeamMergeLock(cast(StateStore, slow), "main", "ws2", lease=0.2)
    async with heir.held() as had:
        assert had
        record = await store.get_record(MERGE_LOCK, "main")
        assert record is not None and record.data["holder"] == "ws2"
    assert slow.reads >= 2


class _Counted:
    """The store, each call it is asked counted by name (it still does all of them)."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self.calls: list[str] = []

    def __getattr__(self, name: str) -> Any:
        found = getattr(self._store, name)
        if not callable(found):
            return found

        def counted(*args: Any, **kwargs: Any) -> Any:
            self.calls.append(name)
            return found(*args, **kwargs)

        return counted


async def test_a_free_path_and_a_free_merge_lock_are_taken_by_one_write(
    store: StateStore,
) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    counted = _Counted(store)
    files = TeamFiles(cast(StateStore, counted))
    token_a = await _claimed(store, "a", "ws1:1:x")
    assert await files.take("a", token_a, "ws1:1:x", ["src/x.py", "src/y.py"]) is None
    assert counted.calls == ["put_record", "put_record"]  # nothing read first
    # A path someone owns is read, and its owner's claim with it.
    counted.calls.clear()
    token_b = await _claimed(store, "b", "ws2:2:y")
    refused = await files.take("b", token_b, "ws2:2:y", ["src/x.py"])
    assert refused is not None and refused.task_id == "a"
    assert counted.calls == ["put_record", "get_record", "get_task_state"]
    counted.calls.clear()
    lock = TeamMergeLock(cast(StateStore, counted), "main", "ws1", lease=patience(30))
    async with lock.held() as had:
        assert had
        assert counted.calls == ["put_record"]
    assert counted.calls == ["put_record", "get_record", "delete_record"]
    assert await store.get_record(MERGE_LOCK, "main") is None
