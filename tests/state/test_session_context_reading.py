"""``ContextManager.reading``: the files the other sessions are on, read in a worker-thread call
the caller makes anyway (the file store's lock-free read, ``ListsNow``), answering what
``busy_files`` answers at that moment; nothing read where the store cannot read there."""

from __future__ import annotations

from pathlib import Path
from typing import cast

import anyio.to_thread
import pytest

from orchestrator.process import procid
from orchestrator.state import FileStateStore
from orchestrator.state.context import CONTEXTS, BusyFile, ContextManager, ListsNow
from orchestrator.state.protocol import StateStore
from tests.support.hops import count_hops


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    root.mkdir()
    return root


async def test_a_read_taken_in_the_callers_call_is_what_busy_files_says(
    project: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    async with FileStateStore.for_repo(project) as store:
        assert isinstance(store, ListsNow)
        contexts = ContextManager(store, project)
        await contexts.update_context("me", task="mine", files_locked=["m.py"])
        await contexts.update_context("s1", task="t1", files_locked=["a.py"], current_file="b.py")
        me = procid.current()
        dead = {"pid": me.pid, "host": me.host, "started": me.started + "-before"}
        gone = await contexts.update_context("gone", task="t2", files_locked=["g.py"])
        # Written by a process of this host that is gone: its locks went with it.
        left = gone.model_copy(update={"writer": dead}).model_dump(mode="json")
        await store.put_record(CONTEXTS, "gone", left)
        read = contexts.reading(exclude={"me"})
        assert read is not None and read.found is None  # nothing read until taken
        hopped = count_hops(monkeypatch)
        await anyio.to_thread.run_sync(read.take)  # the caller's own call, its only one
        assert len(hopped) == 1
        assert read.found == [BusyFile("a.py", "s1", "t1"), BusyFile("b.py", "s1", "t1")]
        assert read.found == await contexts.busy_files(exclude={"me"})


async def test_nothing_is_read_where_the_store_cannot_read_in_the_callers_call(
    project: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    class Elsewhere:
        """A store with no blocking read (the team's database: its reads take no thread)."""

    assert ContextManager(cast(StateStore, Elsewhere()), project).reading() is None
    async with FileStateStore.for_repo(project) as store:
        contexts = ContextManager(store, project)
        await contexts.update_context("s1", task="t1", files_locked=["a.py"])
        read = contexts.reading()
        assert read is not None
        # A dead process's transaction to finish first, say: the store's own call's to make.
        monkeypatch.setattr(store, "list_records_now", lambda namespace: None)
        read.take()
        assert read.found is None

        def broken(namespace: str) -> None:
            raise OSError("the disk went away")

        monkeypatch.setattr(store, "list_records_now", broken)
        read.take()  # never raised into the call that carries it
        assert read.found is None
        assert "the session contexts could not be read: the disk went away" in caplog.text
