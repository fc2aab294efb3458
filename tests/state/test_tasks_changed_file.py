"""The file store's ``list_tasks_changed`` reads no record still held as it is: a stat of each
against the identity of the file it was last seen in, the session's task ids kept the same way
(no parse of a session record that lists every task with its config), whoever wrote since."""

from __future__ import annotations

from collections import Counter
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.models import TaskState, TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.lockfree import LISTED_FROM
from orchestrator.state.file.record_files.records import RecordKind

pytestmark = pytest.mark.asyncio


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as opened:
        yield opened


@pytest.fixture
async def twin(tmp_path: Path, store: FileStateStore) -> AsyncIterator[FileStateStore]:
    """Another process's store on the same directory: its writes announce nothing here."""
    async with FileStateStore.for_repo(tmp_path) as opened:
        yield opened


@pytest.fixture
def parsed(monkeypatch: pytest.MonkeyPatch) -> Counter[str]:
    """The records parsed from now on, by kind."""
    counts: Counter[str] = Counter()
    real_parse = RecordKind.parse

    def counted(self: RecordKind[Any], key: str, raw: bytes) -> Any:
        counts[self.name] += 1
        return real_parse(self, key, raw)

    monkeypatch.setattr(RecordKind, "parse", counted)
    return counts


# A few tasks: a stat each; as many as a listing is for: the kind's directory listed once.
@pytest.mark.parametrize("size", [3, LISTED_FROM])
async def test_records_held_as_they_are_are_not_parsed_again(
    store: FileStateStore, twin: FileStateStore, parsed: Counter[str], size: int
) -> None:
    ids = [f"t{n}" for n in range(size)]
    await store.create_session({"tasks": [{"id": i} for i in ids]}, ids, session_id="s1")
    parsed.clear()  # (what recording them read)
    first = await store.list_tasks_changed("s1", {})
    assert (parsed["tasks"], parsed["sessions"]) == (size, 1)
    held: dict[str, TaskState] = first.states({})
    parsed.clear()
    again = await store.list_tasks_changed("s1", held)
    assert (dict(again.changed), again.order) == ({}, tuple(ids))
    assert not parsed  # neither a task nor the session
    theirs = await twin.update_task_state("t1", {"status": TaskStatus.CANCELLED})
    mine = await store.update_task_state("t2", {"priority": 4})
    parsed.clear()  # (what the writes read)
    changes = await store.list_tasks_changed("s1", held)
    assert changes.changed == {"t1": theirs, "t2": mine}
    assert parsed == {"tasks": 2}
    held = changes.states(held)
    assert list(held.values()) == await store.list_tasks("s1")
    written = await store.update_task_state("t0", {"priority": 1})
    held["t0"] = written  # a write's result held: its stamp was kept as it was written
    parsed.clear()
    assert dict((await store.list_tasks_changed("s1", held)).changed) == {}
    assert not parsed


async def test_a_record_damaged_behind_its_identity_is_recovered_and_read(
    store: FileStateStore, parsed: Counter[str]
) -> None:
    await store.create_session({}, ["a", "b"], session_id="s1")
    await store.update_task_state("a", {"priority": 1})  # a version to recover from
    held = (await store.list_tasks_changed("s1", {})).states({})
    store.core.tasks.current_path("a").write_bytes(b"not a record")
    changes = await store.list_tasks_changed("s1", held)
    assert set(changes.changed) == {"a"} and changes.order == ("a", "b")
    assert changes.changed["a"].version > held["a"].version  # recovered under a new version


async def test_what_is_kept_is_forgotten_with_the_record(store: FileStateStore) -> None:
    await store.create_session({}, ["a"], session_id="s1")
    await store.list_tasks_changed("s1", {})
    stamps = store.core.tasks.stamps
    assert stamps is not None and "a" in stamps
    store.core.tasks.delete("a")
    assert "a" not in stamps
