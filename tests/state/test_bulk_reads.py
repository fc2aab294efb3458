"""A read of many records in the file store (``FileCore.read_many``: a checkpoint, a session's
report, ``council status``, a resume) lists the kind's directory once and opens only the
records that are there: a session of 10,000 tasks stopped while recording, most of them not
recorded yet, is read twice at its stop (issue 51). Counted, never timed: what is opened and
looked at, and that the answer is the one a look per record gives."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import InvalidIdError
from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from orchestrator.state.file.core import peek
from orchestrator.state.file.record_files.layout import CURRENT
from orchestrator.state.file.record_files.records import RecordKind

_LISTED = 600
_RECORDED = 150


class _Looks:
    def __init__(self) -> None:
        self.loads: list[str] = []
        self.exists = 0


@pytest.fixture
async def store(tmp_path: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(tmp_path) as opened:
        yield opened


async def _session(store: FileStateStore) -> tuple[str, list[str]]:
    ids = [f"t{n:04d}" for n in range(_LISTED)]
    session = await store.create_session({}, [], listed=ids)
    recorded = ids[::4][:_RECORDED]
    await store.add_session_tasks(session.session_id, [{"task_id": t} for t in recorded])
    return session.session_id, recorded


def _counting(monkeypatch: pytest.MonkeyPatch) -> _Looks:
    looks = _Looks()
    load = RecordKind.load

    def counting_load(self: RecordKind[Any], key: str, **kwargs: Any) -> Any:
        if self.name == "tasks":
            looks.loads.append(key)
        return load(self, key, **kwargs)

    exists = Path.exists

    def counting_exists(self: Path, *args: Any, **kwargs: Any) -> bool:
        looks.exists += 1
        return exists(self, *args, **kwargs)

    monkeypatch.setattr(RecordKind, "load", counting_load)
    monkeypatch.setattr(Path, "exists", counting_exists)
    return looks


async def test_a_session_mostly_unrecorded_opens_only_its_recorded_tasks(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id, recorded = await _session(store)
    looks = _counting(monkeypatch)

    tasks = await store.list_tasks(session_id)

    assert [t.task_id for t in tasks] == recorded  # the session's order, only what exists
    assert sorted(looks.loads) == sorted(recorded)  # one open each, none for the 450 others
    assert looks.exists <= 4  # the store's own settle checks, not a stat per listed task


async def test_the_answer_is_the_one_a_look_per_record_gives(store: FileStateStore) -> None:
    session_id, recorded = await _session(store)
    await store.update_task_state(recorded[3], {"status": TaskStatus.RUNNING})
    session = await store.get_session(session_id, metrics=False)
    assert session is not None
    kind = store.core.tasks

    bulk = await store.list_tasks(session_id)
    one_by_one = [r for key in session.task_ids if (r := peek(kind, key)) is not None]

    assert [t.model_dump() for t in bulk] == [t.model_dump() for t in one_by_one]
    assert {t.task_id: t.status for t in bulk}[recorded[3]] == TaskStatus.RUNNING


async def test_a_bulk_read_keeps_the_bytes_of_the_records_in_use(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    session_id, recorded = await _session(store)
    kind = store.core.tasks
    await store.get_task_state(recorded[0])  # a record in use: its bytes kept
    kept = dict(kind._bytes_cache)

    await store.list_tasks(session_id)

    assert dict(kind._bytes_cache) == kept  # not pushed out by 150 records read once
    opened: list[str] = []
    real_open = os.open

    def counting_open(path: Any, *args: Any, **kwargs: Any) -> int:
        if os.fspath(path).endswith(CURRENT):
            opened.append(os.fspath(path))
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(os, "open", counting_open)
    again = await store.get_task_state(recorded[0])
    other = await store.get_task_state(recorded[1])  # not kept: opened
    assert again is not None and again.task_id == recorded[0]
    assert other is not None and other.task_id == recorded[1]
    # the kept one read from its bytes (a stat tells they are current), the other opened
    assert [Path(p).parent.name for p in opened] == [recorded[1]]


async def test_every_record_of_a_kind_is_read_from_one_listing(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    _, recorded = await _session(store)
    (store.core.tasks.base / ".hidden").mkdir()  # not a record: skipped, as before
    looks = _counting(monkeypatch)

    every = await store.list_tasks()

    assert sorted(t.task_id for t in every) == sorted(recorded)
    assert sorted(looks.loads) == sorted(recorded)


async def test_a_listed_id_that_is_not_safe_is_refused_by_name(store: FileStateStore) -> None:
    await store.create_session({}, [], listed=["ok"])
    with pytest.raises(InvalidIdError, match=r"tasks id '\.\./escape'"):
        await store.core.read_many(store.core.tasks, ["ok", "../escape"])


async def test_a_few_records_are_looked_at_each_without_listing_every_one(
    store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick reads the few tasks that changed: a stat each, not a listing of 10,000 names."""
    _, recorded = await _session(store)
    listings = 0
    names = RecordKind.names

    def counting_names(self: RecordKind[Any]) -> set[str]:
        nonlocal listings
        listings += 1
        return names(self)

    monkeypatch.setattr(RecordKind, "names", counting_names)
    few = [recorded[1], "t0001", recorded[7]]  # t0001: listed, never recorded

    states = await store.get_task_states(few)

    assert [s.task_id for s in states] == [recorded[1], recorded[7]]
    assert listings == 0
