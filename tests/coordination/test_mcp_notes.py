"""Issue 34, ``council mcp``: notes between sessions in both stores (the file store; two
workstations on one PostgreSQL database), their bounds, and each read taking a note once."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import pytest

from orchestrator.coordination.desk import Caller, Desk
from orchestrator.coordination.notes import NAMESPACE, TEXT_LIMIT, UNREAD_LIMIT
from orchestrator.locks.manager import LockManager
from orchestrator.state import FileStateStore
from orchestrator.state.context import ContextManager
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.state.protocol import StateStore
from tests.support.scheduler_helpers import new_repo


@pytest.fixture
async def file_stores(tmp_path: Path) -> AsyncIterator[tuple[StateStore, StateStore]]:
    state = tmp_path / "state"
    async with FileStateStore(state) as a, FileStateStore(state) as b:
        yield a, b


async def desks(repo: Path, a: StateStore, b: StateStore) -> tuple[Desk, Desk, Desk]:
    """Session sess-a (task t-a) on one store; sess-b and sess-b2 (both on task t-b) on the
    other: two workstations of a team, or two processes of one machine. Each has the context
    its scheduler gives it (a note goes to a session or task someone knows)."""
    for store, session, task in ((a, "sess-a", "t-a"), (b, "sess-b", "t-b"), (b, "sess-b2", "t-b")):
        await ContextManager(store, repo).update_context(session, cli="cli", task=task)
    return (
        Desk(a, repo, caller=Caller("sess-a", "t-a"), locks=LockManager(repo, store=a)),
        Desk(b, repo, caller=Caller("sess-b", "t-b"), locks=LockManager(repo, store=b)),
        Desk(b, repo, caller=Caller("sess-b2", "t-b"), locks=LockManager(repo, store=b)),
    )


async def notes_between_sessions(repo: Path, a: StateStore, b: StateStore) -> None:
    mine, theirs, sibling = await desks(repo, a, b)
    assert (
        await mine.call("post_note", {"to": "t-b", "text": "shared.txt is mine"})
    ).outcome == "ok"
    assert (await mine.call("post_note", {"to": "sess-b", "text": "only for you"})).outcome == "ok"

    taken: dict[str, str] = {}

    async def read(name: str, desk: Desk) -> None:
        taken[name] = (await desk.call("read_notes", {})).text

    async with anyio.create_task_group() as group:  # two readers of task t-b at once
        group.start_soon(read, "theirs", theirs)
        group.start_soon(read, "sibling", sibling)
    together = taken["theirs"] + "\n" + taken["sibling"]
    assert together.count("shared.txt is mine") == 1  # the task's note, taken by one of them
    assert "from session sess-a (task t-a)" in together
    assert "only for you" in taken["theirs"]  # addressed to the session: no one else's
    assert "only for you" not in (await sibling.call("read_notes", {})).text
    assert (await theirs.call("read_notes", {})).text == "no unread notes for you"
    assert (await mine.call("read_notes", {})).text == "no unread notes for you"
    records = await a.list_records(NAMESPACE)
    assert len(records) == 2 and all(r.data["read"] for r in records)


async def test_notes_between_sessions_in_the_file_store(
    tmp_path: Path, file_stores: tuple[StateStore, StateStore]
) -> None:
    await notes_between_sessions(new_repo(tmp_path), *file_stores)


@pytest.mark.postgres
async def test_notes_between_workstations_in_postgres(
    tmp_path: Path, stores: tuple[PostgresStateStore, PostgresStateStore]
) -> None:
    await notes_between_sessions(new_repo(tmp_path), *stores)


async def test_a_note_is_bounded(
    tmp_path: Path, file_stores: tuple[StateStore, StateStore]
) -> None:
    mine, _, _ = await desks(new_repo(tmp_path), *file_stores)
    too_long = await mine.call("post_note", {"to": "t-b", "text": "x" * (TEXT_LIMIT + 1)})
    assert too_long.outcome == "refused" and f"at most {TEXT_LIMIT} characters" in too_long.text
    assert (await mine.call("post_note", {"to": "t-b", "text": "  "})).outcome == "refused"
    assert (await mine.call("post_note", {"to": "../x", "text": "hi"})).outcome == "refused"
    nobody = await mine.call("post_note", {"to": "t-nobody", "text": "hi"})
    assert nobody.outcome == "refused" and "no session or task" in nobody.text
    for n in range(UNREAD_LIMIT):
        assert (await mine.call("post_note", {"to": "t-b", "text": f"n{n}"})).outcome == "ok"
    full = await mine.call("post_note", {"to": "t-b", "text": "one more"})
    assert full.outcome == "refused" and f"{UNREAD_LIMIT} unread notes" in full.text
    missing = await mine.call("handoff", {"task": "t-b", "phase": "plan"})
    assert missing.outcome == "refused" and "no plan handoff" in missing.text
    unknown = await mine.call("drop_tables", {})
    assert unknown.outcome == "refused" and "no tool 'drop_tables'" in unknown.text
