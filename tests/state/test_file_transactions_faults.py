"""A file-backend transaction the disk refuses part-way: before its intent is committed
nothing changes and the error says so; after, the error says it is committed, and the next
use of its records finishes it (no process died: the same store goes on)."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import StateWriteError
from orchestrator.state import FileStateStore
from orchestrator.state.transactions import PutRecord, RecordWrite, UpdateTask
from orchestrator.testing.faulty_fs import FaultyFileOps

pytestmark = pytest.mark.asyncio

_WRITES: list[RecordWrite] = [
    UpdateTask("t1", {"priority": 7}, 1),
    UpdateTask("t2", {"priority": 8}, 1),
    PutRecord("landings", "t1", {"state": "pushed"}, 1),
]


async def _prepared(repo: Path, ops: FaultyFileOps) -> FileStateStore:
    store = FileStateStore.for_repo(repo, file_ops=ops)
    await store.update_task_state("t1", {"priority": 0})
    await store.update_task_state("t2", {"priority": 0})
    await store.put_record("landings", "t1", {"state": "prepared"})
    return store


async def _priorities(store: FileStateStore) -> tuple[object, ...]:
    t1, t2 = await store.get_task_state("t1"), await store.get_task_state("t2")
    landing = await store.get_record("landings", "t1")
    assert t1 and t2 and landing
    return (t1.version, t1.priority, t2.version, t2.priority, landing.data["state"])


async def test_a_full_disk_while_committing_changes_nothing(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    async with await _prepared(tmp_path, ops) as store:
        ops.fail("write")  # the intent's bytes
        with pytest.raises(StateWriteError) as caught:
            await store.write_many(_WRITES)
        assert not caught.value.applied
        assert "not applied" in str(caught.value)
        assert await _priorities(store) == (1, 0, 1, 0, "prepared")
        intents = tmp_path / ".council" / "state" / "transactions"
        assert list(intents.iterdir()) == []  # not even its temp file


async def test_a_record_refused_after_the_commit_is_written_on_next_use(tmp_path: Path) -> None:
    ops = FaultyFileOps()
    async with await _prepared(tmp_path, ops) as store:
        ops.fail("replace", nth=2)  # the 1st replace commits the intent, the 2nd is a record
        with pytest.raises(StateWriteError) as caught:
            await store.write_many(_WRITES)
        assert caught.value.applied
        assert "committed" in "".join(caught.value.__notes__)
        ops.heal()
        assert await _priorities(store) == (2, 7, 2, 8, "pushed")
        assert list((tmp_path / ".council" / "state" / "transactions").iterdir()) == []
