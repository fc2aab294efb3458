"""Conflict strategies on task records (``update_task_with_strategy``), as the keyed records
have them: a writer whose read is stale is refused, overwrites, merges, or is kept aside for a
person, and only the fields it sets take part. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from typing import ClassVar

import pytest

from orchestrator.errors import VersionConflict
from orchestrator.models import TaskState
from orchestrator.state.conflicts import (
    ConflictStrategy,
    MergeConflict,
    PendingConflict,
    list_conflicts,
    resolve_conflict,
    update_task_with_strategy,
)
from orchestrator.state.protocol import StateStore

__all__ = ["TaskStrategiesContract"]


class TaskStrategiesContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def _read_then_moved(self, store: StateStore) -> TaskState:
        """The task as a writer read it, before someone else changed it."""
        read = await store.update_task_state("t1", {"priority": 1, "metadata": {"a": 1}})
        await store.update_task_state("t1", {"priority": 2, "metadata": {"a": 1, "b": 2}})
        return read

    async def test_first_write_wins_refuses_a_stale_writer(self, store: StateStore) -> None:
        read = await self._read_then_moved(store)
        with pytest.raises(VersionConflict):
            await update_task_with_strategy(store, "t1", {"priority": 5}, based_on=read)
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 2

    async def test_last_write_wins_overwrites(self, store: StateStore) -> None:
        read = await self._read_then_moved(store)
        written = await update_task_with_strategy(
            store, "t1", {"priority": 5}, based_on=read, strategy=ConflictStrategy.LAST_WRITE_WINS
        )
        assert isinstance(written, TaskState) and written.priority == 5

    async def test_merge_combines_changes_to_different_parts(self, store: StateStore) -> None:
        read = await self._read_then_moved(store)
        merged = await update_task_with_strategy(
            store,
            "t1",
            {"metadata": {"a": 1, "c": 3}},
            based_on=read,
            strategy=ConflictStrategy.MERGE,
        )
        assert isinstance(merged, TaskState)
        assert merged.metadata == {"a": 1, "b": 2, "c": 3} and merged.priority == 2
        with pytest.raises(MergeConflict, match="priority"):
            await update_task_with_strategy(
                store, "t1", {"priority": 9}, based_on=read, strategy=ConflictStrategy.MERGE
            )

    async def test_a_field_the_update_leaves_alone_is_no_conflict(self, store: StateStore) -> None:
        read = await store.update_task_state("t1", {"priority": 1})
        await store.update_task_state("t1", {"error": "someone else's"})
        merged = await update_task_with_strategy(
            store, "t1", {"priority": 4}, based_on=read, strategy=ConflictStrategy.MERGE
        )
        assert isinstance(merged, TaskState)
        assert merged.priority == 4 and merged.error == "someone else's"

    async def test_manual_keeps_the_write_aside_until_resolved(self, store: StateStore) -> None:
        read = await self._read_then_moved(store)
        kept = await update_task_with_strategy(
            store, "t1", {"priority": 7}, based_on=read, strategy=ConflictStrategy.MANUAL
        )
        assert isinstance(kept, PendingConflict) and kept.kind == "task"
        assert kept.fields == ["priority"] and kept.record == "task t1"
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 2  # untouched
        assert [c.conflict_id for c in await list_conflicts(store)] == [kept.conflict_id]
        settled = await resolve_conflict(store, kept.conflict_id, "ours")
        assert isinstance(settled, TaskState) and settled.priority == 7
        assert await list_conflicts(store) == []
