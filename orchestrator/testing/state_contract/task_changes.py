"""The changed-tasks part of the state store contract: ``list_tasks_changed`` gives the session's
tasks in ``list_tasks``' order, reads only those not held as they are now (written here or by
another process, new to the session, held at an older version), and names those gone. A mixin
of ``StateStoreContract``; like ``watch`` it needs a ``store_twin`` fixture (a second store on
the same data, as another process opens it)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from orchestrator.models import TaskState, TaskStatus
from orchestrator.state.protocol import StateStore

__all__ = ["TaskChangesContract"]


async def _held(store: StateStore, session_id: str) -> dict[str, TaskState]:
    return {task.task_id: task for task in await store.list_tasks(session_id)}


class TaskChangesContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_nothing_held_reads_every_task_in_order(self, store: StateStore) -> None:
        await store.create_session({}, ["c", "a", "b"], session_id="s1")
        changes = await store.list_tasks_changed("s1", {})
        assert changes.order == ("c", "a", "b")
        assert changes.changed == await _held(store, "s1")
        assert list(changes.states({})) == ["c", "a", "b"]

    async def test_tasks_held_as_they_are_are_not_read(self, store: StateStore) -> None:
        await store.create_session({}, ["a", "b"], session_id="s1")
        held = await _held(store, "s1")
        changes = await store.list_tasks_changed("s1", held)
        assert (changes.order, dict(changes.changed), changes.gone(held)) == (("a", "b"), {}, set())
        again = await store.list_tasks_changed("s1", held)  # asked again, still nothing read
        assert dict(again.changed) == {}
        assert again.states(held) == held

    async def test_a_write_here_or_elsewhere_is_read(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        await store.create_session({}, ["a", "b", "c"], session_id="s1")
        held = await _held(store, "s1")
        await store.list_tasks_changed("s1", held)
        mine = await store.update_task_state("a", {"priority": 3})
        theirs = await store_twin.update_task_state("c", {"status": TaskStatus.CANCELLED})
        changes = await store.list_tasks_changed("s1", held)
        assert changes.changed == {"a": mine, "c": theirs}
        assert changes.states(held) == await _held(store, "s1")
        held = changes.states(held)
        assert dict((await store.list_tasks_changed("s1", held)).changed) == {}

    async def test_an_older_version_held_is_read(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        old = await _held(store, "s1")
        new = await store.update_task_state("a", {"priority": 1})
        await store.list_tasks_changed("s1", {"a": new})  # the store has seen the new one
        assert (await store.list_tasks_changed("s1", old)).changed == {"a": new}

    async def test_a_record_with_another_stamp_is_read_whatever_its_version(
        self, store: StateStore
    ) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        held = await _held(store, "s1")
        other = held["a"].model_copy(update={"updated_at": held["a"].updated_at.replace(year=2001)})
        changes = await store.list_tasks_changed("s1", {"a": other})
        assert changes.changed == held

    async def test_tasks_new_to_the_session_and_gone_from_it(
        self, store: StateStore, store_twin: StateStore
    ) -> None:
        await store.create_session({}, ["a", "b"], session_id="s1", listed=["a", "b", "n"])
        await store.create_session({}, ["x"], session_id="s2")
        held = await _held(store, "s1")
        await store.list_tasks_changed("s1", held)
        added = await store_twin.add_session_tasks("s1", ["n"])
        assert added == 1
        moved = await store_twin.update_task_state("b", {"session_id": "s2"})
        changes = await store.list_tasks_changed("s1", held)
        assert changes.order == ("a", "n")
        assert set(changes.changed) == {"n"}
        assert changes.gone(held) == {"b"}
        assert changes.states(held) == await _held(store, "s1")
        assert moved.session_id == "s2"

    async def test_a_record_of_another_session_held_is_not_taken_as_this_ones(
        self, store: StateStore
    ) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        await store.create_session({}, ["x"], session_id="s2")
        theirs = await _held(store, "s2")
        changes = await store.list_tasks_changed("s1", {"a": theirs["x"], **theirs})
        assert changes.order == ("a",)
        assert set(changes.changed) == {"a"}
        assert changes.gone(theirs) == {"x"}

    async def test_an_unknown_session_has_no_tasks(self, store: StateStore) -> None:
        changes = await store.list_tasks_changed("nope", {})
        assert (changes.order, dict(changes.changed)) == ((), {})
