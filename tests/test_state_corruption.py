"""A record damaged at any byte is detected, quarantined and recovered from history."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.errors import StateCorrupted
from orchestrator.state import FileStateStore


async def make_store(root: Path) -> tuple[FileStateStore, Path, bytes]:
    store = FileStateStore(root)
    await store.update_task_state("t1", {"priority": 1, "metadata": {"note": "first"}})
    await store.update_task_state("t1", {"priority": 2, "metadata": {"note": "second"}})
    current = root / "tasks" / "t1" / "current.json"
    return store, current, current.read_bytes()


@pytest.mark.parametrize("mode", ["truncate", "flip", "zero"])
async def test_damage_at_every_offset_is_recovered(tmp_path: Path, mode: str) -> None:
    store, current, pristine = await make_store(tmp_path / "seed")
    await store.aclose()
    size = len(pristine)
    offsets = range(size) if mode == "truncate" else range(0, size, 3)
    for offset in offsets:
        root = tmp_path / f"{mode}-{offset}"
        store, current, original = await make_store(root)
        data = bytearray(original)
        if mode == "truncate":
            data = data[:offset]
        elif mode == "flip":
            data[offset] ^= 0x20
        else:
            data[offset] = 0
        if bytes(data) == original:
            continue
        current.write_bytes(bytes(data))

        task = await store.get_task_state("t1")

        assert task is not None, offset
        assert (task.priority, task.metadata) == (1, {"note": "first"}), offset
        assert task.version == 3, offset
        quarantine = list((root / "quarantine" / "tasks").iterdir())
        assert [q.read_bytes() for q in quarantine] == [bytes(data)], offset
        await store.aclose()


async def test_damage_of_the_only_version_is_reported(tmp_path: Path) -> None:
    store = FileStateStore(tmp_path)
    await store.update_task_state("t1", {"priority": 1})
    current = tmp_path / "tasks" / "t1" / "current.json"
    original = current.read_bytes()
    for offset in range(0, len(original), 7):
        current.write_bytes(original[:offset])
        with pytest.raises(StateCorrupted, match="no valid history"):
            await store.get_task_state("t1")
        assert current.read_bytes() == original[:offset]
    await store.aclose()
