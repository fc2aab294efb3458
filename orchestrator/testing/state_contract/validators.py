"""The record-rule part of the state store contract (``store.validators``): a write that
breaks a rule is refused with ``RecordRejected`` naming the rule, on every write path (task
updates, claims, sessions, keyed records, transactions), and nothing is written. A mixin of
``StateStoreContract``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from orchestrator.errors import RecordRejected, StateError
from orchestrator.models import KeyedRecord, TaskState
from orchestrator.plugins.record_rule import RecordRule
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import PutRecord, UpdateTask

__all__ = ["ValidatorsContract"]


def _no_negative_priority(kind: str, key: str, before: Any, after: Any) -> str | None:
    if isinstance(after, TaskState) and after.priority < 0:
        return f"priority {after.priority} is below 0"
    return None


def _notes_need_a_title(kind: str, key: str, before: Any, after: Any) -> str | None:
    if isinstance(after, KeyedRecord) and not after.data.get("title"):
        return "a note needs a title"
    return None


def _nothing_named_forbidden(kind: str, key: str, before: Any, after: Any) -> str | None:
    return f"{key} is a forbidden name" if key.startswith("forbidden") else None


PRIORITY = RecordRule("tasks.priority-not-negative", _no_negative_priority, frozenset({"tasks"}))
TITLE = RecordRule("notes.title", _notes_need_a_title, frozenset({"records/notes"}))
NAMES = RecordRule("no-forbidden-names", _nothing_named_forbidden)  # every kind


class ValidatorsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_task_update_breaking_a_rule_is_refused_and_writes_nothing(
        self, store: StateStore
    ) -> None:
        await store.update_task_state("t1", {"priority": 1})
        store.validators.add(PRIORITY)
        with pytest.raises(RecordRejected) as refused:
            await store.update_task_state("t1", {"priority": -5})
        assert refused.value.rule == "tasks.priority-not-negative"
        assert "tasks record 't1' was not written" in str(refused.value)
        assert "priority -5 is below 0" in str(refused.value)
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 1 and task.version == 1
        assert await store.update_task_state("t1", {"priority": 2})  # a good write goes on

    async def test_a_new_record_breaking_a_rule_is_never_created(self, store: StateStore) -> None:
        store.validators.add(PRIORITY)
        with pytest.raises(RecordRejected):
            await store.update_task_state("fresh", {"priority": -1})
        assert await store.get_task_state("fresh") is None

    async def test_a_rule_holds_only_for_its_kind(self, store: StateStore) -> None:
        store.validators.add(TITLE)
        with pytest.raises(RecordRejected) as refused:
            await store.put_record("notes", "n1", {"body": "no title"})
        assert refused.value.kind == "records/notes" and refused.value.key == "n1"
        assert await store.get_record("notes", "n1") is None
        await store.put_record("other", "n1", {"body": "no title"})  # another namespace
        await store.put_record("notes", "n1", {"title": "t"})

    async def test_a_global_constraint_holds_for_every_kind(self, store: StateStore) -> None:
        store.validators.add(NAMES)
        with pytest.raises(RecordRejected):
            await store.update_task_state("forbidden-task", {"priority": 1})
        with pytest.raises(RecordRejected):
            await store.put_record("notes", "forbidden-note", {"title": "t"})
        with pytest.raises(RecordRejected):
            await store.create_session({}, [], session_id="forbidden-session")
        assert await store.get_session("forbidden-session") is None
        assert await store.list_records("notes") == []

    async def test_a_claim_whose_fields_break_a_rule_takes_nothing(self, store: StateStore) -> None:
        await store.update_task_state("t1", {"priority": 1})
        store.validators.add(PRIORITY)
        with pytest.raises(RecordRejected):
            await store.acquire_claim("t1", "h1", 30, {"priority": -1})
        task = await store.get_task_state("t1")
        assert task is not None and task.claim is None and task.version == 1
        assert await store.acquire_claim("t1", "h1", 30, {"priority": 3}) is not None

    async def test_a_transaction_with_one_write_breaking_a_rule_applies_none(
        self, store: StateStore
    ) -> None:
        await store.update_task_state("t1", {"priority": 1})
        store.validators.add(TITLE)
        with pytest.raises(RecordRejected):
            await store.write_many(
                [UpdateTask("t1", {"priority": 7}), PutRecord("notes", "n1", {"body": "x"})]
            )
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 1
        assert await store.get_record("notes", "n1") is None

    async def test_a_rule_that_fails_refuses_the_write(self, store: StateStore) -> None:
        def broken(kind: str, key: str, before: Any, after: Any) -> str | None:
            raise KeyError("oops")

        store.validators.add(RecordRule("broken", broken, frozenset({"tasks"})))
        with pytest.raises(RecordRejected) as refused:
            await store.update_task_state("t1", {"priority": 1})
        assert "the rule failed: KeyError" in str(refused.value)
        assert await store.get_task_state("t1") is None

    async def test_a_rule_sees_the_record_before_and_after(self, store: StateStore) -> None:
        seen: list[tuple[int | None, int]] = []

        def no_lowering(kind: str, key: str, before: Any, after: Any) -> str | None:
            seen.append((before.priority if before else None, after.priority))
            if before is not None and after.priority < before.priority:
                return "priority may only grow"
            return None

        store.validators.add(RecordRule("priority-grows", no_lowering, frozenset({"tasks"})))
        await store.update_task_state("t1", {"priority": 2})
        await store.update_task_state("t1", {"priority": 5})
        with pytest.raises(RecordRejected, match="priority may only grow"):
            await store.update_task_state("t1", {"priority": 4})
        assert seen == [(None, 2), (2, 5), (5, 4)]

    async def test_rules_are_removed_by_name_and_a_name_is_taken_once(
        self, store: StateStore
    ) -> None:
        store.validators.add(PRIORITY)
        with pytest.raises(StateError, match="already registered"):
            store.validators.add(PRIORITY)
        assert [r.name for r in store.validators.rules()] == [PRIORITY.name]
        assert store.validators.remove(PRIORITY.name) is True
        assert store.validators.remove(PRIORITY.name) is False
        assert await store.update_task_state("t1", {"priority": -1})
