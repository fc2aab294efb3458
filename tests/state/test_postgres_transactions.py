"""Transactions on a real PostgreSQL server, as another workstation sees them: the writes of
a committed transaction reach the other store's subscribers (their notices are sent by the
commit), a refused transaction sends none, and a reader on another connection never sees
part of one (one database transaction)."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.errors import StateError, VersionConflict
from orchestrator.events import Event, EventType
from orchestrator.state.file.store import FileStateStore
from orchestrator.state.local_records import LocalRecords
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.state.transactions import PutRecord, RecordWrite, UpdateTask
from tests.support.pg_tier import until
from tests.support.timing import patience

pytestmark = [pytest.mark.postgres, pytest.mark.asyncio]


def _remote_tasks(events: list[Event]) -> set[tuple[str, int]]:
    return {
        (str(e.data["key"]), int(e.data["version"]))
        for e in events
        if e.type == EventType.STATE_UPDATED and e.data.get("remote")
    }


async def test_only_a_committed_transaction_is_heard_elsewhere(
    stores: tuple[PostgresStateStore, PostgresStateStore],
) -> None:
    a, b = stores
    for key in ("x", "y"):
        await a.update_task_state(key, {"priority": 0})
    heard: list[Event] = []
    b.subscribe(heard.append)
    with anyio.fail_after(patience(5)):
        await b.listen()
    refused: list[RecordWrite] = [UpdateTask("x", {"priority": 1}), UpdateTask("y", {}, 7)]
    with pytest.raises(VersionConflict):
        await a.write_many(refused)
    # A marker written after the refused transaction: once b hears it, b has heard everything
    # a sent before it.
    await a.update_task_state("marker", {})
    await until(lambda: ("marker", 1) in _remote_tasks(heard))
    assert _remote_tasks(heard) == {("marker", 1)}
    await a.write_many([UpdateTask("x", {"priority": 1}), UpdateTask("y", {"priority": 1})])
    await until(lambda: {("x", 2), ("y", 2)} <= _remote_tasks(heard))


async def test_a_reader_elsewhere_never_sees_half_a_transaction(
    stores: tuple[PostgresStateStore, PostgresStateStore],
) -> None:
    """While one store commits transactions that move two tasks together, the other reads
    both over and over: it always finds them equal."""
    a, b = stores
    for key in ("x", "y"):
        await a.update_task_state(key, {"priority": 0})
    rounds, seen = 40, []

    async def writer() -> None:
        for n in range(1, rounds + 1):
            await a.write_many([UpdateTask("x", {"priority": n}), UpdateTask("y", {"priority": n})])

    async def reader() -> None:
        while True:
            tasks = {t.task_id: t.priority for t in await b.list_tasks()}
            seen.append((tasks["x"], tasks["y"]))
            if tasks["x"] == rounds:
                return

    with anyio.fail_after(patience(60)):
        async with anyio.create_task_group() as group:
            group.start_soon(writer)
            group.start_soon(reader)
    assert all(x == y for x, y in seen), [p for p in seen if p[0] != p[1]][:5]


async def test_a_namespace_kept_on_this_workstation_is_refused(pg_dsn: str, tmp_path: Path) -> None:
    local = LocalRecords.of(FileStateStore.for_repo(tmp_path), ["worktrees"])
    async with await PostgresStateStore.connect(pg_dsn, local=local) as store:
        with pytest.raises(StateError, match="this workstation's disk"):
            await store.write_many([UpdateTask("t", {}), PutRecord("worktrees", "w", {})])
        assert await store.get_task_state("t") is None
