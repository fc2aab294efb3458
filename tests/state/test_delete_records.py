"""``delete_records`` on the file store: several records deleted in one worker-thread call,
each under its own lock; a lock another holder has is waited for (nothing deleted meanwhile),
and a transaction a dead process left on one of them is finished first."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from orchestrator import filelock
from orchestrator.state import FileStateStore
from orchestrator.state.deletions import Deletion
from tests.support.hops import count_hops


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as opened:
        await opened.get_task_state("first")  # the first use settles what a crash left
        yield opened


async def test_three_records_go_in_one_worker_thread_call(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    for namespace in ("radar-sessions", "session-context", "worktrees"):
        await store.put_record(namespace, "s1", {"n": 1})
    hops = count_hops(monkeypatch)
    found = await store.delete_records(
        [Deletion(n, "s1") for n in ("radar-sessions", "session-context", "worktrees")]
    )
    assert found == [True, True, True] and len(hops) == 1
    root = store.core.root / "records"
    for namespace in ("radar-sessions", "session-context", "worktrees"):
        assert not (root / namespace / "s1").exists()  # the directory, its lock, too


async def test_a_held_lock_is_waited_for(store: FileStateStore) -> None:
    await store.put_record("worktrees", "s1", {"n": 1})
    await store.put_record("owners", "o1", {"n": 1})
    kind = store.core.namespace("owners")
    held = await anyio.to_thread.run_sync(
        lambda: filelock.try_acquire(kind.lock_path("o1"), root=store.core.anchor, directory=True)
    )
    assert held is not None
    done: list[list[bool]] = []

    async def delete() -> None:
        done.append(
            await store.delete_records([Deletion("worktrees", "s1"), Deletion("owners", "o1")])
        )

    async with anyio.create_task_group() as group:
        group.start_soon(delete)
        await anyio.sleep(0.05)
        # Nothing went while one of the locks was held elsewhere.
        assert not done and await store.get_record("worktrees", "s1") is not None
        await anyio.to_thread.run_sync(held.release)
    assert done == [[True, True]]
    assert await store.get_record("owners", "o1") is None
