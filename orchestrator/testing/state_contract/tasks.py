"""The tasks part of the state store contract: a task's state read, written by merging its
fields with a compare-and-set on its version, refused whole when invalid or unsafely named,
its last ten versions kept, the store's identity unchanged by writes. A mixin of
``StateStoreContract``."""

from __future__ import annotations

from typing import ClassVar

import pytest

from orchestrator.errors import (
    InvalidIdError,
    StateError,
    VersionConflict,
)
from orchestrator.models import (
    TaskStatus,
)
from orchestrator.state.protocol import StateStore

__all__ = ["TasksContract"]


class TasksContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- tasks ------------------------------------------------------------------------------

    async def test_missing_task_is_none(self, store: StateStore) -> None:
        assert await store.get_task_state("nope") is None

    async def test_update_creates_merges_and_bumps_version(self, store: StateStore) -> None:
        first = await store.update_task_state("t1", {"priority": 5, "metadata": {"a": 1}})
        assert (first.task_id, first.version, first.priority) == ("t1", 1, 5)
        second = await store.update_task_state("t1", {"status": TaskStatus.RUNNING})
        assert second.version == 2
        assert second.priority == 5 and second.metadata == {"a": 1}
        assert second.status == TaskStatus.RUNNING
        assert second.updated_at >= first.updated_at
        assert second.created_at == first.created_at
        assert await store.get_task_state("t1") == second

    async def test_expected_version_is_compare_and_set(self, store: StateStore) -> None:
        await store.update_task_state("t1", {}, expected_version=0)
        with pytest.raises(VersionConflict) as caught:
            await store.update_task_state("t1", {}, expected_version=0)
        assert (caught.value.expected, caught.value.actual) == (0, 1)
        await store.update_task_state("t1", {"priority": 1}, expected_version=1)
        with pytest.raises(VersionConflict):
            await store.update_task_state("t1", {"priority": 2}, expected_version=1)
        task = await store.get_task_state("t1")
        assert task is not None and (task.version, task.priority) == (2, 1)

    async def test_store_owned_fields_are_ignored(self, store: StateStore) -> None:
        task = await store.update_task_state("t1", {"version": 99, "task_id": "t1"})
        assert task.version == 1

    async def test_invalid_update_writes_nothing(self, store: StateStore) -> None:
        await store.update_task_state("t1", {"priority": 1})
        with pytest.raises(StateError, match="status"):
            await store.update_task_state("t1", {"status": "exploded"})
        with pytest.raises(StateError, match="no_such_field"):
            await store.update_task_state("t1", {"no_such_field": 1})
        task = await store.get_task_state("t1")
        assert task is not None and task.version == 1

    @pytest.mark.parametrize("bad", ["../x", "", "A", ".hidden", "a/b", "x" * 65, "a..b"])
    async def test_unsafe_task_ids_are_refused(self, store: StateStore, bad: str) -> None:
        with pytest.raises(InvalidIdError):
            await store.update_task_state(bad, {})
        with pytest.raises(InvalidIdError):
            await store.get_task_state(bad)
        with pytest.raises(InvalidIdError):
            await store.get_task_states(["t1", bad])

    async def test_many_tasks_are_read_at_once_in_the_order_asked(self, store: StateStore) -> None:
        for task_id, priority in (("c", 3), ("a", 1), ("b", 2)):
            await store.update_task_state(task_id, {"priority": priority})
        await store.update_task_state("b", {"priority": 5})
        found = await store.get_task_states(["b", "missing", "c", "a"])
        assert [(t.task_id, t.version, t.priority) for t in found] == [
            ("b", 2, 5),
            ("c", 1, 3),
            ("a", 1, 1),
        ]
        assert found[0] == await store.get_task_state("b")
        assert await store.get_task_states([]) == []
        assert await store.get_task_states(["none"]) == []

    async def test_history_keeps_the_last_ten_versions(self, store: StateStore) -> None:
        for n in range(15):
            await store.update_task_state("t1", {"priority": n})
        history = await store.task_history("t1")
        assert [h.version for h in history] == list(range(14, 4, -1))
        assert [h.priority for h in history] == list(range(13, 3, -1))

    async def test_the_identity_of_the_data_holds_across_calls_and_writes(
        self, store: StateStore
    ) -> None:
        first = await store.identity()
        assert first
        await store.update_task_state("t1", {"priority": 1})
        await store.create_session({}, [{"task_id": "t2"}])
        assert await store.identity() == first

    async def test_list_tasks(self, store: StateStore) -> None:
        for task_id in ("b", "a"):
            await store.update_task_state(task_id, {})
        assert sorted(t.task_id for t in await store.list_tasks()) == ["a", "b"]
