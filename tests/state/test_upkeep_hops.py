"""The file store's clean-up of stale locks makes one worker-thread call for ``SWEEP_CHUNK``
records, whatever their kinds (issue 51): not three or more calls a record, nor one a kind. The
run's state monitor sweeps once a minute, so a run lasting longer than that paid a few hops for
every record on disk in the middle of its tasks, then one for each of its dozen kinds."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from orchestrator import filelock
from orchestrator.state import FileStateStore
from orchestrator.state.file import upkeep
from tests.support.hops import count_hops


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore(tmp_path / "state") as opened:
        yield opened


async def sweep_hops(store: FileStateStore, monkeypatch: pytest.MonkeyPatch) -> list[object]:
    with monkeypatch.context() as patch:
        hopped = count_hops(patch)
        await store.clean_stale_locks()
    return hopped


@pytest.mark.parametrize("records", [2, 12])
async def test_one_call_in_all_for_fewer_records_than_a_chunk(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch, records: int
) -> None:
    await store.create_session({}, [f"t{n}" for n in range(records)], session_id="s1")
    for n in range(records):
        await store.put_record("notes", f"k{n}", {"n": n})
        await store.put_record("owners", f"k{n}", {"n": n})
    hopped = await sweep_hops(store, monkeypatch)
    # Dead writers' intents and batches, the kinds listed, each of the five swept (tasks,
    # sessions, counters, "notes", "owners"), the checkpoints: one call.
    assert len(hopped) == 1, hopped


async def test_one_call_a_kind_still_sweeps_each_record_under_its_lock(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    await store.put_record("notes", "kept", {"n": 1})
    leftovers = [
        store.tasks.dir_for(key) / f".current.json.{n}.dead.tmp" for n, key in enumerate("ab")
    ]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    ghost = store.root / "tasks" / "ghost"
    ghost.mkdir()
    (ghost / ".lock").touch()
    held_path = store.tasks.lock_path("b")
    held = filelock.try_acquire(held_path, directory=True)
    assert held is not None
    try:
        # The first task's temp file and the ghost's lock; the second task's lock is held by
        # a writer: its record is left alone, its temp file with it.
        assert await store.clean_stale_locks() == 2
    finally:
        held.release()
    assert not leftovers[0].exists() and leftovers[1].exists() and not ghost.exists()
    assert held_path.exists()
    assert await store.clean_stale_locks() == 1  # the second's, now that nobody holds it
    assert not leftovers[1].exists()
    assert await store.get_task_state("a") is not None
    assert await store.get_task_state("b") is not None
    kept = await store.get_record("notes", "kept")
    assert kept is not None and kept.data == {"n": 1}


async def test_a_kind_of_many_records_is_swept_a_chunk_a_call(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A stop that lands during the sweep waits for one chunk at most; every record is swept.
    monkeypatch.setattr(upkeep, "SWEEP_CHUNK", 2)
    await store.create_session({}, [f"t{n}" for n in range(5)], session_id="s1")
    leftovers = [store.tasks.dir_for(f"t{n}") / f".current.json.{n}.dead.tmp" for n in range(5)]
    for leftover in leftovers:
        leftover.write_bytes(b"half")
    hopped = await sweep_hops(store, monkeypatch)
    # Seven records (five tasks, the session, the counter block) two a call: four calls, the
    # first with the dead writers and the kinds' listing, the last with the checkpoints.
    assert len(hopped) == 4, hopped
    assert not any(leftover.exists() for leftover in leftovers)
    assert len(await store.list_tasks("s1")) == 5


async def test_the_purge_of_expired_records_reads_every_namespace_in_one_call(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The state monitor's purge, once a minute: every namespace read in one call (it was one
    # a namespace), then each expired record deleted in a call of its own.
    for namespace in ("notes", "owners", "radar-sessions"):
        for n in range(3):
            await store.put_record(namespace, f"k{n}", {"n": n}, ttl=600 if n else 1)
    with monkeypatch.context() as patch:
        hopped = count_hops(patch)
        assert await store.purge_expired() == 0
    assert len(hopped) == 1, hopped
    later = datetime.now(UTC) + timedelta(seconds=5)
    with monkeypatch.context() as patch:
        hopped = count_hops(patch)
        assert await store.purge_expired(later) == 3  # the three of one second
    assert len(hopped) == 1 + 3, hopped
    assert await store.get_record("notes", "k0") is None
    kept = await store.get_record("notes", "k1")
    assert kept is not None and kept.data == {"n": 1}
