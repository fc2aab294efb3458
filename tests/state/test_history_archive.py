"""The history archive: deltas rebuild every version exactly; the file backend keeps a long
history in little space, survives a crash between packing a batch and removing what it
packed, and names a damaged archive instead of hiding the versions it held."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from orchestrator.errors import StateCorrupted
from orchestrator.state import FileStateStore
from orchestrator.state.history_archive import (
    ARCHIVE_BATCH,
    ArchiveDamaged,
    apply_delta,
    delta,
    pack,
    unpack,
)

MANY = 10 + 3 * ARCHIVE_BATCH


def test_a_delta_turns_one_document_into_the_next() -> None:
    old: dict[str, Any] = {"a": 1, "n": {"x": 1, "gone": True, "deep": {"k": [1]}}, "z": None}
    new: dict[str, Any] = {"a": 1, "n": {"x": 2, "deep": {"k": [1, 2]}, "new": {}}, "b": None}
    change = delta(old, new)
    assert apply_delta(old, change) == new
    assert old["n"]["x"] == 1  # the old document is left as it was
    assert delta(new, new) == {}


def test_batches_unpack_to_the_documents_packed() -> None:
    docs = [{"version": n, "data": {"n": n, "same": "x" * 50}} for n in range(1, 8)]
    data = pack(docs[:3]) + pack(docs[3:])
    assert unpack(data) == docs
    assert pack([]) == b""
    with pytest.raises(ArchiveDamaged, match="cut short"):
        unpack(data[:-4])
    flipped = bytearray(data)
    flipped[len(data) // 2] ^= 0xFF
    with pytest.raises(ArchiveDamaged):
        unpack(bytes(flipped))


async def test_a_long_history_costs_a_fraction_of_whole_versions(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        for n in range(300):
            one = await store.update_task_state("t1", {"metadata": {"note": "x" * 400, "n": n}})
        record = tmp_path / "tasks" / "t1"
        kept = sum(p.stat().st_size for p in record.iterdir())
        whole = len(one.model_dump_json())
        assert kept < 300 * whole / 5
        assert len(await store.record_history("tasks", "t1")) == 300


async def test_a_crash_after_packing_leaves_no_version_twice(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        writes = 10 + ARCHIVE_BATCH  # the current, the window and a batch but one waiting
        for n in range(writes):
            await store.update_task_state("t1", {"priority": n})
        record = tmp_path / "tasks" / "t1"
        waiting = sorted(record.glob("a*.json"))
        assert len(waiting) == ARCHIVE_BATCH - 1
        aside = tmp_path / "aside"
        aside.mkdir()
        for path in waiting:
            shutil.copy2(path, aside / path.name)
        store.tasks.archive.compact("t1")
        packed = (record / "history.jsonl.gz").read_bytes()
        # As if the crash came before the packed versions were removed: they are back.
        for path in aside.iterdir():
            shutil.copy2(path, record / path.name)
        assert store.tasks.archive.compact("t1") == 0
        assert (record / "history.jsonl.gz").read_bytes() == packed
        assert not list(record.glob("a*.json"))
        history = await store.record_history("tasks", "t1")
        assert [d["version"] for d in history] == list(range(writes, 0, -1))


async def test_a_damaged_archive_is_named_and_writes_go_on(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        for n in range(MANY):
            await store.update_task_state("t1", {"priority": n})
        archive = tmp_path / "tasks" / "t1" / "history.jsonl.gz"
        archive.write_bytes(archive.read_bytes()[:-10])
        with pytest.raises(StateCorrupted, match="history archive") as raised:
            await store.record_history("tasks", "t1")
        assert str(archive) in str(raised.value)
        problems = await store.verify_records()
        assert [(p.kind, p.key, p.reason, p.recovered) for p in problems] == [
            ("tasks", "t1", "history archive damaged", False)
        ]
        assert f"move {archive} away" in problems[0].detail
        # The recent versions need no archive; writes go on and keep what leaves the window
        # whole beside the damaged archive rather than behind it.
        recent = await store.record_history("tasks", "t1", limit=5)
        assert [d["version"] for d in recent] == list(range(MANY, MANY - 5, -1))
        for n in range(ARCHIVE_BATCH):
            await store.update_task_state("t1", {"priority": n})
        assert len(list(archive.parent.glob("a*.json"))) >= ARCHIVE_BATCH
        archive.unlink()  # moved away as the error advises: the rest reads again
        assert await store.verify_records() == []
        history = await store.record_history("tasks", "t1")
        assert history[0]["version"] == MANY + ARCHIVE_BATCH
