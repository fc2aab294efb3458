"""A session's context written again by the manager that wrote it last: a compare-and-set
against the version it wrote, with no read first, and its first write against none
(``state.context.ContextManager``); a write by anyone else meanwhile is never lost (the
conflict reads it again), and a removal by task goes only while the context is still that
task's."""

from __future__ import annotations

from pathlib import Path

import pytest

from orchestrator.state import FileStateStore
from orchestrator.state.context import CONTEXTS, ContextManager
from tests.support.hops import count_hops

pytestmark = pytest.mark.anyio


class CountedReads:
    def __init__(self, store: FileStateStore, monkeypatch: pytest.MonkeyPatch) -> None:
        self.keys: list[str] = []
        read = store.get_record

        async def counted(namespace: str, key: str) -> object:
            if namespace == CONTEXTS:
                self.keys.append(key)
            return await read(namespace, key)

        monkeypatch.setattr(store, "get_record", counted)


async def test_a_context_written_here_last_is_written_again_without_a_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        contexts = ContextManager(store, tmp_path)
        reads = CountedReads(store, monkeypatch)
        await contexts.update_context("s1", task="t1", cli="a", files_locked=["a.py"])
        assert reads.keys == []  # the first write expects none there: no read either
        await contexts.add_files("s1", changing=["b.py"])
        await contexts.update_context("s1", message="half way")
        assert reads.keys == []
        shown = await contexts.get_context("s1")
        assert shown is not None and shown.files() == ["a.py", "b.py"]
        assert shown.message == "half way" and shown.task == "t1"
        reads.keys.clear()
        assert await contexts.remove_context("s1", task="t1")
        assert reads.keys == [] and await contexts.get_context("s1") is None


async def test_a_write_by_another_meanwhile_is_kept(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        ours, theirs = ContextManager(store, tmp_path), ContextManager(store, tmp_path)
        await ours.update_context("s1", task="t1", files_locked=["a.py"])
        await theirs.add_files("s1", changing=["c.py"])
        await ours.add_files("s1", changing=["b.py"])  # a conflict: read again, then merged
        shown = await ours.get_context("s1")
        assert shown is not None and shown.files() == ["a.py", "b.py", "c.py"]


async def test_removal_by_task_spares_a_context_another_task_wrote_since(
    tmp_path: Path,
) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        ours, theirs = ContextManager(store, tmp_path), ContextManager(store, tmp_path)
        await ours.update_context("s1", task="t1")
        await theirs.update_context("s1", task="t2")
        assert not await ours.remove_context("s1", task="t1")
        shown = await ours.get_context("s1")
        assert shown is not None and shown.task == "t2"
        await ours.update_context("s1", message="again")  # its memory gone: read, not lost
        shown = await theirs.get_context("s1")
        assert shown is not None and shown.task == "t2" and shown.message == "again"


async def test_fields_and_files_are_one_write(tmp_path: Path) -> None:
    """``add_files(fields=...)``: the fields merged first, the paths added, in one write; a
    reset list among the fields is reset before the paths join it."""
    async with FileStateStore(tmp_path / "state") as store:
        contexts, theirs = ContextManager(store, tmp_path), ContextManager(store, tmp_path)
        await theirs.update_context("s1", task="t0", files_changing=["old.py"])
        shown = await contexts.add_files(
            "s1", changing=["./b.py"], fields={"task": "t1", "cli": "a", "files_changing": []}
        )  # a conflict: read again, then merged as it would have been
        assert (shown.task, shown.cli, shown.files_changing) == ("t1", "a", ["b.py"])
        record = await store.get_record(CONTEXTS, "s1")
        assert record is not None and record.version == 2  # theirs, then this one write
        with pytest.raises(TypeError, match="unknown context fields \\['nope'\\]"):
            await contexts.add_files("s1", changing=["c.py"], fields={"nope": 1})


async def test_a_few_paths_are_normalized_without_a_hop(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A build's usual report (a few paths: an lstat of each component) is normalized on the
    event loop; many paths in a worker thread."""
    async with FileStateStore(tmp_path / "state") as store:
        contexts = ContextManager(store, tmp_path)
        hopped = count_hops(monkeypatch)
        shown = await contexts.add_files("s1", locked=["a.py"], changing=["src/../b.py"])
        assert shown.files() == ["a.py", "b.py"]
        assert ContextManager._normalized_fields not in [getattr(f, "__func__", f) for f in hopped]
        many = [f"f{n}.py" for n in range(20)]
        shown = await contexts.add_files("s1", changing=many)
        assert len(shown.files_changing) == 21
        assert ContextManager._normalized_fields in [getattr(f, "__func__", f) for f in hopped]
