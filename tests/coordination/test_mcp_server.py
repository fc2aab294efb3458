"""Issue 34, ``council mcp``: the council's MCP server against the SDK's own client over stdio.

A real run's state (``council run`` of one scripted task, plan and build), then what the other
sessions would have made of it while it ran: a session with a worktree and changes of its own,
a lock held by another process, a note. The server is the real ``council mcp`` process:
read-only for the run (``council mcp FILE``), and as a session's relay (``--session``) to the
socket this test serves as the orchestrator does (``coordination.service``).
"""

from __future__ import annotations

import json
import os
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import anyio
import pytest
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client

from orchestrator.coordination.desk import Caller, Desk
from orchestrator.coordination.notes import NAMESPACE as NOTES
from orchestrator.coordination.relay import SOCKET_ENV
from orchestrator.coordination.service import serve_session
from orchestrator.coordination.tools import TOOLS
from orchestrator.locks.manager import LockManager
from orchestrator.radar.overlap import Severity
from orchestrator.radar.records import COLLISIONS, Collision, CollisionSide, HunkPair, collision_key
from orchestrator.safety import secret_mask
from orchestrator.state import FileStateStore
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES
from tests.support.council_process import council, task, write_config
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
OTHER = "sess-other"  # a session of the run with a worktree and changes
SECRET = "sk-live-4f9a8b7c6d5e4f3a2b1c"


@pytest.fixture
def run(tmp_path: Path) -> tuple[Path, Path]:
    """(the run config, the repository) after a real run of one task, plus another session's
    worktree with changes, recorded as the orchestrator records one."""
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("t1", "WRITE t1.txt one"))
    done = council(["run", str(config), "--json"], cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    work = tmp_path / "other-work"
    git(repo, "worktree", "add", "-q", "-b", "council/other/1", str(work), "main")
    base = git(repo, "rev-parse", "main").strip()
    (work / "shared.txt").write_text("one\ntwo, changed by the other session\n")
    (work / "fresh.txt").write_text("new\n")
    record = SessionWorktree(
        session_id=OTHER,
        cli="cli",
        task_id="t-other",
        path=work,
        branch="council/other/1",
        base_commit=base,
        created_at=datetime.now(UTC),
    )

    # a session whose worktree is gone (or on another workstation): its branch's commits
    gone = tmp_path / "gone-work"
    git(repo, "worktree", "add", "-q", "-b", "council/gone/1", str(gone), "main")
    (gone / "landed.txt").write_text("committed by the gone session\n")
    git(gone, "add", "landed.txt")
    git(gone, "commit", "-q", "-m", "gone's work")
    git(repo, "worktree", "remove", str(gone))
    records = {
        OTHER: record,
        "sess-gone": record.model_copy(
            update={
                "session_id": "sess-gone",
                "task_id": "t-gone",
                "branch": "council/gone/1",
                "path": gone,
            }
        ),
        "sess-away": record.model_copy(
            update={
                "session_id": "sess-away",
                "task_id": "t-away",
                "branch": "council/away/1",
                "path": gone,
            }
        ),
    }

    async def put() -> None:
        async with FileStateStore(repo / ".council" / "state") as store:
            for key, value in records.items():
                await store.put_record(WORKTREES, key, value.model_dump(mode="json"))

    anyio.run(put)
    return config, repo


def seen_collision(me: str, my_task: str) -> Collision:
    """What the radar records when ``me`` and the other session change one line of shared.txt."""
    return Collision(
        key=collision_key(me, OTHER),
        severity=Severity.CONFLICT,
        a=CollisionSide(task_id=my_task, session_id=me, tip="a" * 40, diff="+one, mine"),
        b=CollisionSide(
            task_id="t-other",
            session_id=OTHER,
            tip="b" * 40,
            diff="-two\n+two, changed by the other session",
        ),
        paths=["shared.txt"],
        hunks=[HunkPair(path="shared.txt", a="line 2", b="line 2")],
        conflict=True,
        conflict_paths=["shared.txt"],
    )


async def record_collision(repo: Path, collision: Collision) -> None:
    async with open_store(repo) as store:
        await store.put_record(COLLISIONS, collision.key, collision.stored())


def open_store(repo: Path) -> FileStateStore:
    """The run's store as its orchestrator opens it: events to ``.council/events.jsonl``."""
    council_dir = repo / ".council"
    return FileStateStore(council_dir / "state", events_path=council_dir / "events.jsonl")


@asynccontextmanager
async def client(*args: str, env: dict[str, str] | None = None) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=COUNCIL[0],
        args=[*COUNCIL[1:], "mcp", *args],
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1", **(env or {})},
    )
    with open(os.devnull, "w") as errors:
        async with (
            stdio_client(params, errlog=errors) as (read, write),
            ClientSession(read, write) as session,
        ):
            with anyio.fail_after(patience(20)):
                await session.initialize()
            yield session


async def call(session: ClientSession, tool: str, /, **args: str) -> tuple[bool, str]:
    with anyio.fail_after(patience(20)):
        result = await session.call_tool(tool, args)
    text = "\n".join(getattr(part, "text", "") for part in result.content)
    return bool(result.is_error if hasattr(result, "is_error") else result.isError), text


def mcp_calls(repo: Path) -> list[dict[str, Any]]:
    lines = (repo / ".council" / "events.jsonl").read_text().splitlines()
    found = [json.loads(line) for line in lines if '"mcp.call"' in line]
    return [{**e.get("data", {}), **{k: v for k, v in e.items() if k != "data"}} for e in found]


async def test_read_only_server_lists_and_answers_every_tool(run: tuple[Path, Path]) -> None:
    config, repo = run
    holder = LockManager(repo, store=FileStateStore(repo / ".council" / "state"))
    await holder.acquire_file_lock("sess-holder", "shared.txt")
    try:
        async with client(str(config)) as session:
            listed = await session.list_tools()
            assert sorted(t.name for t in listed.tools) == sorted(t.name for t in TOOLS)

            failed, text = await call(session, "who_holds", path="./shared.txt")
            assert not failed
            assert "shared.txt: locked by session sess-holder" in text

            failed, text = await call(session, "session_changes", session=OTHER)
            assert not failed
            assert "two, changed by the other session" in text and "fresh.txt" in text
            failed, text = await call(session, "session_changes", session="t-other")  # by task
            assert "two, changed by the other session" in text
            failed, text = await call(session, "session_changes", session="sess-gone")
            assert not failed and "committed by the gone session" in text
            assert "its worktree is not here" in text
            failed, text = await call(session, "session_changes", session="sess-away")
            assert text.startswith("refused:") and "nor published" in text

            failed, text = await call(session, "handoff", task="t1", phase="plan")
            assert not failed and '"phase": "plan"' in text and "t1.txt" in text

            failed, text = await call(session, "read_notes")
            assert not failed and text == "no notes in this run"

            failed, text = await call(session, "collisions")
            assert not failed and text.startswith("no collisions")
            await record_collision(repo, seen_collision("sess-me", "t-me"))
            failed, text = await call(session, "collisions")
            assert not failed
            assert text == (
                "task t-me and task t-other: conflict on shared.txt "
                "(a merge conflicts on shared.txt)"
            )

            writes = (("post_note", {"to": OTHER, "text": "hi"}), ("request_lock", {"path": "a"}))
            for tool, args in writes:
                _, text = await call(session, tool, **args)
                assert text.startswith("refused:") and "read-only" in text
    finally:
        await holder.aclose()
    calls = mcp_calls(repo)
    assert [c["tool"] for c in calls] == [
        "who_holds",
        "session_changes",
        "session_changes",
        "session_changes",
        "session_changes",
        "handoff",
        "read_notes",
        "collisions",
        "collisions",
        "post_note",
        "request_lock",
    ]
    assert all(c["session"] is None for c in calls)
    assert [c["outcome"] for c in calls][-2:] == ["refused", "refused"]


async def test_a_session_posts_reads_and_locks_through_its_socket(run: tuple[Path, Path]) -> None:
    _, repo = run
    secret_mask.remember_named({"adapters.cli.env.MCP_TEST_KEY": SECRET})  # a key the run knows
    async with open_store(repo) as store:
        locks = LockManager(repo, store=store)
        mine = Desk(store, repo, caller=Caller("sess-me", "t-me"), locks=locks)
        other = Desk(store, repo, caller=Caller(OTHER, "t-other"), locks=locks)
        async with serve_session(mine) as socket:
            env = {SOCKET_ENV: str(socket)}
            async with client("--session", "sess-me", env=env) as session:
                failed, text = await call(
                    session, "post_note", to="t-other", text=f"I take shared.txt; key {SECRET}"
                )
                assert not failed and text.startswith("note n-") and "left for t-other" in text

                failed, text = await call(session, "request_lock", path="shared.txt")
                assert not failed and "shared.txt: lock granted to you, fencing token" in text
                failed, text = await call(session, "request_lock", path="shared.txt")
                assert "already yours" in text
                failed, text = await call(session, "request_lock", path="../outside.txt")
                assert text.startswith("refused:") and "not a path inside the repository" in text
                failed, text = await call(session, "request_lock", path=".git/config")
                assert text.startswith("refused:")
                failed, text = await call(session, "who_holds", path="shared.txt")
                assert "locked by you" in text

                # the other session: the note is its task's, the lock refused naming the holder
                answer = await other.call("read_notes", {})
                assert "from session sess-me (task t-me)" in answer.text
                assert "I take shared.txt" in answer.text and SECRET not in answer.text
                assert (await other.call("read_notes", {})).text == "no unread notes for you"
                refused = await other.call("request_lock", {"path": "shared.txt"})
                assert refused.outcome == "refused" and "locked by session sess-me" in refused.text

                failed, text = await call(session, "read_notes")
                assert text == "no unread notes for you"

                # the radar's findings for this session, and only its own
                failed, text = await call(session, "collisions")
                assert not failed and text == "no live session changes the same files as yours"
                await store.put_record(
                    COLLISIONS, "c-elsewhere", seen_collision("sess-x", "t-x").stored()
                )
                mine = seen_collision("sess-me", "t-me")
                await store.put_record(COLLISIONS, mine.key, mine.stored())
                failed, text = await call(session, "collisions")
                assert not failed
                assert "- task t-other changes shared.txt: the same lines; a merge" in text
                assert "shared.txt: your line 2, their line 2" in text
                assert "+two, changed by the other session" in text
                assert "t-x" not in text and "sess-x" not in text
        assert [g.path for g in locks.held("sess-me")] == ["shared.txt"]
        assert not (socket.parent).exists()  # the socket's directory went with the session
        await locks.aclose()
        notes = await store.list_records(NOTES)
    assert len(notes) == 1 and notes[0].data["read"] is True
    assert SECRET not in json.dumps(notes[0].data)
    sessions = {(c["tool"], c["session"], c["outcome"]) for c in mcp_calls(repo)}
    assert ("post_note", "sess-me", "ok") in sessions
    assert ("request_lock", OTHER, "refused") in sessions


async def test_a_sessions_server_cannot_act_as_another_session(run: tuple[Path, Path]) -> None:
    _, repo = run
    async with open_store(repo) as store:
        locks = LockManager(repo, store=store)
        mine = Desk(store, repo, caller=Caller("sess-me", "t-me"), locks=locks)
        async with serve_session(mine) as socket:
            # a relay started as another session, on this session's socket: refused, all of it
            env = {SOCKET_ENV: str(socket)}
            async with client("--session", OTHER, env=env) as session:
                for tool, args in (
                    ("read_notes", {}),
                    ("post_note", {"to": "t1", "text": "from a stranger"}),
                    ("request_lock", {"path": "README.md"}),
                ):
                    _, text = await call(session, tool, **args)
                    assert text.startswith("refused: this council server answers session sess-me")
        assert locks.held(OTHER) == [] and locks.held("sess-me") == []
        assert await store.list_records(NOTES) == []
        await locks.aclose()
    refusals = [c for c in mcp_calls(repo) if c["outcome"] == "refused"]
    assert {c["subject"] for c in refusals} == {OTHER} and len(refusals) == 3


async def test_session_relay_needs_its_socket(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k != SOCKET_ENV}
    done = await anyio.run_process(
        [*COUNCIL, "mcp", "--session", "sess-me"], env=env, check=False, cwd=tmp_path
    )
    assert done.returncode == 2 and SOCKET_ENV.encode() in done.stderr
    done = await anyio.run_process([*COUNCIL, "mcp"], env=env, check=False, cwd=tmp_path)
    assert done.returncode == 2 and b"needs FILE" in done.stderr
