"""Session context files: what each session does, readable by the others."""

from __future__ import annotations

import json
import logging
from datetime import timedelta
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import InvalidIdError, PathEscapeError
from orchestrator.models import utcnow
from orchestrator.state.context import ContextManager, SessionContext, WorkStatus


@pytest.fixture
def project(tmp_path: Path) -> Path:
    root = tmp_path / "repo"
    (root / "src").mkdir(parents=True)
    return root


@pytest.fixture
def contexts(project: Path) -> ContextManager:
    return ContextManager(project)


async def test_update_then_read(contexts: ContextManager, project: Path) -> None:
    before = utcnow()
    first = await contexts.update_context(
        "s1", cli="claude", task="t1", current_file="./src//app.py", progress=10, message="go"
    )
    assert first.current_file == "src/app.py"
    assert first.status == WorkStatus.WORKING and first.updated_at >= before
    assert await contexts.get_context("s1") == first

    second = await contexts.update_context("s1", progress=60, files_locked=["src/b.py", "a.py"])
    assert (second.cli, second.task, second.message) == ("claude", "t1", "go")  # merged
    assert second.progress == 60 and second.files_locked == ["a.py", "src/b.py"]
    assert second.updated_at >= first.updated_at
    on_disk = json.loads((project / ".council" / "context" / "s1.json").read_text())
    assert on_disk["session"] == "s1" and on_disk["progress"] == 60
    assert await contexts.get_context("nobody") is None


async def test_bad_updates_are_refused_and_change_nothing(contexts: ContextManager) -> None:
    await contexts.update_context("s1", progress=5)
    with pytest.raises(TypeError, match="colour"):
        await contexts.update_context("s1", colour="red")
    with pytest.raises(ValueError, match="progress"):
        await contexts.update_context("s1", progress=101)
    with pytest.raises(ValueError, match="status"):
        await contexts.update_context("s1", status="sleeping")
    with pytest.raises(PathEscapeError):
        await contexts.update_context("s1", current_file="../../etc/passwd")
    with pytest.raises(InvalidIdError):
        await contexts.update_context("../s2", progress=1)
    context = await contexts.get_context("s1")
    assert context is not None and context.progress == 5 and context.current_file is None


async def test_find_sessions_on_the_same_file(contexts: ContextManager, project: Path) -> None:
    await contexts.update_context("s1", current_file="src/a.py")
    await contexts.update_context("s2", files_locked=["src/a.py", "src/b.py"])
    await contexts.update_context("s3", current_file="src/c.py", files_locked=["src/d.py"])

    async def sessions_on(path: str | Path, exclude: str | None = None) -> list[str]:
        return [c.session for c in await contexts.find_file_conflicts(path, exclude=exclude)]

    assert await sessions_on("./src//a.py") == ["s1", "s2"]
    assert await sessions_on(project / "src" / "a.py", exclude="s1") == ["s2"]
    assert await sessions_on("src/b.py") == ["s2"]
    assert await sessions_on("src/d.py") == ["s3"]
    assert await sessions_on("src/none.py") == []
    with pytest.raises(PathEscapeError):
        await contexts.find_file_conflicts("/etc/passwd")


async def test_task_summary_counts_every_status(contexts: ContextManager) -> None:
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


async def test_mark_blocked_and_unblock(contexts: ContextManager) -> None:
    await contexts.update_context("s1", cli="codex", current_file="src/a.py")
    blocked = await contexts.mark_blocked("s1", "waiting for s2's lock", blocked_on="src/b.py")
    assert blocked.status == WorkStatus.BLOCKED
    assert (blocked.message, blocked.blocked_on) == ("waiting for s2's lock", "src/b.py")
    assert blocked.cli == "codex" and blocked.current_file == "src/a.py"
    working = await contexts.update_context("s1", status=WorkStatus.WORKING, message="")
    assert working.blocked_on is None  # blocked_on only holds while blocked


def write_aged(contexts: ContextManager, context: SessionContext, minutes: float) -> None:
    """A context as a session left it ``minutes`` ago (its process may be long gone)."""
    aged = context.model_copy(update={"updated_at": utcnow() - timedelta(minutes=minutes)})
    (contexts.directory / f"{context.session}.json").write_text(aged.model_dump_json())


async def test_stale_contexts_are_cleaned_but_done_ones_kept(contexts: ContextManager) -> None:
    for session, status in (("old", "working"), ("stuck", "blocked"), ("finished", "done")):
        write_aged(contexts, await contexts.update_context(session, status=status), 90)
    await contexts.update_context("fresh", status="working")
    write_aged(contexts, await contexts.update_context("recent", status="waiting"), 10)

    assert await contexts.cleanup_stale_contexts(30) == 2
    remaining = [c.session for c in await contexts.all_contexts()]
    assert remaining == ["finished", "fresh", "recent"]
    assert await contexts.cleanup_stale_contexts(30, include_done=True) == 1
    assert [c.session for c in await contexts.all_contexts()] == ["fresh", "recent"]
    assert await contexts.cleanup_stale_contexts(5) == 1  # "recent" is 10 minutes old
    with pytest.raises(ValueError, match="timeout_minutes"):
        await contexts.cleanup_stale_contexts(-1)


async def test_remove_context(contexts: ContextManager) -> None:
    await contexts.update_context("s1", progress=1)
    assert await contexts.remove_context("s1") is True
    assert await contexts.remove_context("s1") is False
    assert await contexts.get_context("s1") is None
    assert await contexts.all_contexts() == []


async def test_concurrent_updates_of_one_session_are_all_kept(contexts: ContextManager) -> None:
    fields: list[dict[str, object]] = [
        {"cli": "gemini"},
        {"progress": 42},
        {"message": "halfway"},
        {"current_file": "src/a.py"},
        {"task": "t1"},
        {"files_locked": ["src/a.py"]},
    ]
    other = ContextManager(contexts.project_dir)  # a second writer, as another process would

    async def write(writer: ContextManager, update: dict[str, object]) -> None:
        await writer.update_context("s1", **update)

    async with anyio.create_task_group() as tg:
        for n, update in enumerate(fields):
            tg.start_soon(write, contexts if n % 2 else other, update)
    context = await contexts.get_context("s1")
    assert context is not None
    assert (context.cli, context.progress, context.message, context.task) == (
        "gemini",
        42,
        "halfway",
        "t1",
    )
    assert context.current_file == "src/a.py" and context.files_locked == ["src/a.py"]


async def test_reads_tolerate_files_replaced_and_removed_under_them(
    contexts: ContextManager,
) -> None:
    await contexts.update_context("s1", progress=0)
    seen: list[int] = []

    async def writer() -> None:
        for n in range(1, 40):
            await contexts.update_context("s1", progress=n)
            await contexts.update_context("s2", progress=n)
            await contexts.remove_context("s2")

    async def reader() -> None:
        for _ in range(200):
            for context in await contexts.all_contexts():
                seen.append(context.progress)
            await anyio.sleep(0)

    async with anyio.create_task_group() as tg:
        tg.start_soon(writer)
        tg.start_soon(reader)
    assert seen and all(0 <= p < 40 for p in seen)
    final = await contexts.get_context("s1")
    assert final is not None and final.progress == 39


async def test_a_damaged_file_is_skipped_and_replaced_by_the_next_update(
    contexts: ContextManager, caplog: pytest.LogCaptureFixture
) -> None:
    await contexts.update_context("s1", progress=3)
    await contexts.update_context("s2", progress=4)
    (contexts.directory / "s1.json").write_text('{"session": "s1", "progr')
    (contexts.directory / ".s2.json.123.abcd.tmp").write_text("half a write")
    with caplog.at_level(logging.WARNING, logger="orchestrator.state.context"):
        assert [c.session for c in await contexts.all_contexts()] == ["s2"]
    assert "s1.json" in caplog.text
    assert await contexts.get_context("s1") is None
    repaired = await contexts.update_context("s1", progress=7)
    assert repaired.progress == 7 and await contexts.get_context("s1") == repaired
