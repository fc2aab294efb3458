"""The session context (``orchestrator.state.context``) on a backend, as a contract mixin.

Session contexts are keyed records of the store, so what one orchestrator process writes is
what every other one reads: these tests run on every backend through ``StateStoreContract``.
"""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path
from typing import ClassVar

import anyio
import pytest

from orchestrator.errors import InvalidIdError, PathEscapeError
from orchestrator.models import utcnow
from orchestrator.process import procid
from orchestrator.state.context import (
    CONTEXTS,
    BusyFile,
    ContextManager,
    SessionContext,
    WorkStatus,
)
from orchestrator.state.protocol import StateStore

__all__ = ["ContextContract"]


def _project(tmp_path: Path) -> Path:
    root = tmp_path / "project"
    (root / "src").mkdir(parents=True, exist_ok=True)
    return root


async def _write_as(
    store: StateStore, context: SessionContext, *, minutes_ago: float = 0, **changes: object
) -> None:
    """``context`` as left ``minutes_ago`` (or by another writer): written straight to the store."""
    aged = context.model_copy(
        update={"updated_at": utcnow() - timedelta(minutes=minutes_ago), **changes}
    )
    await store.put_record(CONTEXTS, context.session, aged.model_dump(mode="json"))


class ContextContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_context_update_then_read(self, store: StateStore, tmp_path: Path) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        before = utcnow()
        first = await contexts.update_context(
            "s1", cli="claude", task="t1", current_file="./src//app.py", progress=10, message="go"
        )
        assert first.current_file == "src/app.py"
        assert first.status == WorkStatus.WORKING and first.updated_at >= before
        assert first.writer == procid.current().as_dict()
        assert await contexts.get_context("s1") == first

        second = await contexts.update_context("s1", progress=60, files_locked=["src/b.py", "a.py"])
        assert (second.cli, second.task, second.message) == ("claude", "t1", "go")  # merged
        assert second.progress == 60 and second.files_locked == ["a.py", "src/b.py"]
        assert second.updated_at >= first.updated_at
        record = await store.get_record(CONTEXTS, "s1")
        assert record is not None and record.data["progress"] == 60
        assert await contexts.get_context("nobody") is None

    async def test_context_seen_by_another_manager_of_the_store(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        writer = ContextManager(store, _project(tmp_path))
        reader = ContextManager(store, _project(tmp_path))
        await writer.update_context("s1", task="t1", files_locked=["src/a.py"])
        assert [c.session for c in await reader.all_contexts()] == ["s1"]
        assert await reader.busy_files() == [BusyFile("src/a.py", "s1", "t1")]

    async def test_context_bad_updates_are_refused_and_change_nothing(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", progress=5)
        with pytest.raises(TypeError, match="colour"):
            await contexts.update_context("s1", colour="red")
        with pytest.raises(TypeError, match="writer"):
            await contexts.update_context("s1", writer={"pid": 1})
        with pytest.raises(ValueError, match="progress"):
            await contexts.update_context("s1", progress=101)
        with pytest.raises(ValueError, match="status"):
            await contexts.update_context("s1", status="sleeping")
        with pytest.raises(PathEscapeError):
            await contexts.update_context("s1", current_file="../../etc/passwd")
        with pytest.raises(PathEscapeError):
            await contexts.add_files("s1", changing=["/etc/passwd"])
        with pytest.raises(InvalidIdError):
            await contexts.update_context("../s2", progress=1)
        context = await contexts.get_context("s1")
        assert context is not None and context.progress == 5 and context.current_file is None
        assert context.files_changing == []

    async def test_context_add_files_unions_locked_and_changing(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", task="t1", files_locked=["src/a.py"])
        added = await contexts.add_files("s1", locked=["./src/b.py"], changing=["c.py", "c.py"])
        assert added.files_locked == ["src/a.py", "src/b.py"]
        assert added.files_changing == ["c.py"] and added.task == "t1"
        again = await contexts.add_files("s1", changing=["a.py"])
        assert again.files_changing == ["a.py", "c.py"]
        assert again.files() == ["a.py", "c.py", "src/a.py", "src/b.py"]
        fresh = await contexts.add_files("s2", changing=["d.py"])
        assert fresh.files_locked == [] and fresh.files_changing == ["d.py"]

    async def test_context_find_sessions_on_the_same_file(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        project = _project(tmp_path)
        contexts = ContextManager(store, project)
        await contexts.update_context("s1", current_file="src/a.py")
        await contexts.update_context("s2", files_locked=["src/a.py", "src/b.py"])
        await contexts.update_context("s3", current_file="src/c.py", files_locked=["src/d.py"])
        await contexts.add_files("s4", changing=["src/e.py"])

        async def sessions_on(path: str | Path, exclude: str | None = None) -> list[str]:
            return [c.session for c in await contexts.find_file_conflicts(path, exclude=exclude)]

        assert await sessions_on("./src//a.py") == ["s1", "s2"]
        assert await sessions_on(project / "src" / "a.py", exclude="s1") == ["s2"]
        assert await sessions_on("src/b.py") == ["s2"]
        assert await sessions_on("src/d.py") == ["s3"]
        assert await sessions_on("src/e.py") == ["s4"]
        assert await sessions_on("src/none.py") == []
        with pytest.raises(PathEscapeError):
            await contexts.find_file_conflicts("/etc/passwd")

    async def test_context_busy_files_of_the_others_by_path(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("me", task="mine", files_locked=["m.py"])
        await contexts.update_context("s2", task="t2", files_locked=["z.py", "b.py"])
        await contexts.update_context("s1", task="t1", current_file="b.py")
        await contexts.add_files("s1", changing=["a.py"])
        await contexts.add_files("s3", changing=["c.py"])
        assert await contexts.busy_files(exclude={"me"}) == [
            BusyFile("a.py", "s1", "t1"),
            BusyFile("b.py", "s1", "t1"),
            BusyFile("b.py", "s2", "t2"),
            BusyFile("c.py", "s3", None),
            BusyFile("z.py", "s2", "t2"),
        ]
        assert [b.path for b in await contexts.busy_files(exclude={"s1", "s2", "s3"})] == ["m.py"]

    async def test_context_of_a_dead_writer_is_not_busy(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        me = procid.current()
        dead = {"pid": me.pid, "host": me.host, "started": me.started + "-before"}
        away = {"pid": me.pid, "host": me.host + "-elsewhere", "started": me.started}
        for session, writer in (("gone", dead), ("remote", away), ("old", None)):
            made = await contexts.update_context(session, files_locked=[f"{session}.py"])
            await _write_as(store, made, writer=writer)
        # Another host's writer cannot be asked, and one without an identity cannot either:
        # both are taken for alive; a dead local one is not.
        assert [b.session for b in await contexts.busy_files()] == ["old", "remote"]
        assert [c.session for c in await contexts.all_contexts()] == ["gone", "old", "remote"]

    async def test_context_task_summary_counts_every_status(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", task="t1")
        await contexts.update_context("s2", task="t1", status=WorkStatus.WAITING)
        await contexts.mark_blocked("s3", "needs src/a.py", "s1")
        await contexts.update_context("s3", task="t1")
        await contexts.update_context("s4", task="t1", status="done", progress=100)
        await contexts.update_context("s5", task="t1", status="done")
        await contexts.update_context("s6", task="t2")
        assert await contexts.get_task_summary("t1") == {
            WorkStatus.WORKING: 1,
            WorkStatus.BLOCKED: 1,
            WorkStatus.WAITING: 1,
            WorkStatus.DONE: 2,
        }
        assert await contexts.get_task_summary("t9") == dict.fromkeys(WorkStatus, 0)

    async def test_context_mark_blocked_and_unblock(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", cli="codex", current_file="src/a.py")
        blocked = await contexts.mark_blocked("s1", "waiting for s2's lock", blocked_on="src/b.py")
        assert blocked.status == WorkStatus.BLOCKED
        assert (blocked.message, blocked.blocked_on) == ("waiting for s2's lock", "src/b.py")
        assert blocked.cli == "codex" and blocked.current_file == "src/a.py"
        working = await contexts.update_context("s1", status=WorkStatus.WORKING, message="")
        assert working.blocked_on is None  # blocked_on only holds while blocked

    async def test_context_stale_ones_are_cleaned_but_done_ones_kept(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        for session, status in (("old", "working"), ("stuck", "blocked"), ("finished", "done")):
            made = await contexts.update_context(session, status=status)
            await _write_as(store, made, minutes_ago=90)
        await contexts.update_context("fresh", status="working")
        recent = await contexts.update_context("recent", status="waiting")
        await _write_as(store, recent, minutes_ago=10)

        assert await contexts.cleanup_stale_contexts(30) == 2
        remaining = [c.session for c in await contexts.all_contexts()]
        assert remaining == ["finished", "fresh", "recent"]
        assert await contexts.cleanup_stale_contexts(30, include_done=True) == 1
        assert [c.session for c in await contexts.all_contexts()] == ["fresh", "recent"]
        assert await contexts.cleanup_stale_contexts(5) == 1  # "recent" is 10 minutes old
        with pytest.raises(ValueError, match="timeout_minutes"):
            await contexts.cleanup_stale_contexts(-1)

    async def test_context_remove(self, store: StateStore, tmp_path: Path) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", progress=1)
        assert await contexts.remove_context("s1") is True
        assert await contexts.remove_context("s1") is False
        assert await contexts.get_context("s1") is None
        assert await contexts.all_contexts() == []
        await contexts.update_context("s2", task="t2")
        assert await contexts.remove_context("s2", task="t1") is False  # not t1's: it stays
        assert await contexts.get_context("s2") is not None
        assert await contexts.remove_context("s2", task="t2") is True
        assert await contexts.remove_context("s2", task="t2") is False

    async def test_context_concurrent_updates_of_one_session_are_all_kept(
        self, store: StateStore, tmp_path: Path
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        other = ContextManager(store, _project(tmp_path))  # a second writer
        fields: list[dict[str, object]] = [
            {"cli": "gemini"},
            {"progress": 42},
            {"message": "halfway"},
            {"current_file": "src/a.py"},
            {"task": "t1"},
            {"files_locked": ["src/a.py"]},
        ]
        changed = [f"f{n}.py" for n in range(6)]

        async def write(writer: ContextManager, update: dict[str, object]) -> None:
            await writer.update_context("s1", **update)

        async def add(writer: ContextManager, path: str) -> None:
            await writer.add_files("s1", changing=[path])

        async with anyio.create_task_group() as tg:
            for n, update in enumerate(fields):
                tg.start_soon(write, contexts if n % 2 else other, update)
            for n, path in enumerate(changed):
                tg.start_soon(add, other if n % 2 else contexts, path)
        context = await contexts.get_context("s1")
        assert context is not None
        assert (context.cli, context.progress, context.message, context.task) == (
            "gemini",
            42,
            "halfway",
            "t1",
        )
        assert context.current_file == "src/a.py" and context.files_locked == ["src/a.py"]
        assert context.files_changing == changed

    async def test_context_damaged_record_is_skipped_and_replaced_by_the_next_update(
        self, store: StateStore, tmp_path: Path, caplog: pytest.LogCaptureFixture
    ) -> None:
        contexts = ContextManager(store, _project(tmp_path))
        await contexts.update_context("s1", progress=3)
        await contexts.update_context("s2", progress=4)
        await store.put_record(CONTEXTS, "s1", {"session": "s1", "progress": "lots"})
        with caplog.at_level(logging.WARNING, logger="orchestrator.state.context"):
            assert [c.session for c in await contexts.all_contexts()] == ["s2"]
        assert f"{CONTEXTS}/s1" in caplog.text
        assert await contexts.get_context("s1") is None
        repaired = await contexts.update_context("s1", progress=7)
        assert repaired.progress == 7 and await contexts.get_context("s1") == repaired
