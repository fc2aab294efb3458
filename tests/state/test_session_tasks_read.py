"""A session's tasks, read by the file store in one worker-thread call (issue 51): its record
and its tasks' looked at together (``FileTasks.list_tasks``), where they were two calls; a
record that reads as damaged still takes the locked path that recovers it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from orchestrator.state import FileStateStore
from tests.support.hops import count_hops


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore(tmp_path / "state") as opened:
        yield opened


def damage(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[0] ^= 0x01
    path.write_bytes(bytes(data))


async def test_a_session_and_its_tasks_are_one_call(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    await store.create_session({}, ["a", "b", "c"], session_id="s1")
    await store.create_session({}, ["d"], session_id="s2")
    await store.update_task_state("b", {"priority": 4})
    with monkeypatch.context() as patch:
        hopped = count_hops(patch)
        found = await store.list_tasks("s1")
        missing = await store.list_tasks("nobody")
    assert [(t.task_id, t.priority) for t in found] == [("a", 0), ("b", 4), ("c", 0)]
    assert missing == []
    assert len(hopped) == 1, hopped  # the unknown session: no call (its directory is missing)


async def test_a_damaged_task_or_session_is_recovered_as_before(store: FileStateStore) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    await store.update_task_state("a", {"priority": 1})
    await store.update_task_state("a", {"priority": 2})
    await store.update_session("s1", {"metadata": {"n": 1}})
    damage(store.tasks.current_path("a"))
    found = await store.list_tasks("s1")
    # Recovered from history: the version before the damaged one.
    assert [(t.task_id, t.priority) for t in found] == [("a", 1), ("b", 0)]
    damage(store.sessions.current_path("s1"))
    again = await store.list_tasks("s1")
    assert [t.task_id for t in again] == ["a", "b"]
    session = await store.get_session("s1")
    assert session is not None
