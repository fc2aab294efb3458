"""The what-a-write-hands-back part of the state store contract: a write returns the record as the
store holds it. A record that held a known secret's value (``safety.secret_mask``) is stored
masked, and its writer is handed that masked record, never the one it gave: whatever keeps a
write's result (the scheduler's view of its tasks, a run's end report built from the records it
holds, the live board) shows no more than a read of the store would. A mixin of
``StateStoreContract``."""

from __future__ import annotations

import secrets
from typing import ClassVar

import pytest

from orchestrator.models import TaskStatus
from orchestrator.safety import secret_mask
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import PutRecord, UpdateSession, UpdateTask

__all__ = ["StoredContract"]


def _secret() -> str:
    """A value the run knows as a secret, new to this process (``secret_mask`` keeps every
    value it is told for the process's life; a fresh one keeps the tests apart)."""
    value = f"sk-contract-{secrets.token_hex(12)}"
    secret_mask.remember_named({"CONTRACT_API_KEY": value})
    return value


class StoredContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_task_write_hands_back_the_masked_record(self, store: StateStore) -> None:
        value = _secret()
        await store.create_session({}, ["a"], session_id="s1")
        written = await store.update_task_state(
            "a", {"status": TaskStatus.FAILED, "error": f"the CLI said: key {value} refused"}
        )
        assert value not in written.model_dump_json()
        assert written.error is not None and "refused" in written.error
        assert written == await store.get_task_state("a")

    async def test_a_keyed_record_and_a_session_hand_back_what_is_stored(
        self, store: StateStore
    ) -> None:
        value = _secret()
        put = await store.put_record("notes", "n1", {"text": f"token={value}", "n": 1})
        assert value not in put.model_dump_json()
        assert put == await store.get_record("notes", "n1")
        await store.create_session({}, ["a"], session_id="s1")
        session = await store.update_session(
            "s1", {"metadata": {"why": f"stopped with {value}"}}, metrics=False
        )
        assert value not in session.model_dump_json()
        read = await store.get_session("s1", metrics=False)
        assert read is not None and session.metadata == read.metadata

    async def test_a_transaction_hands_back_the_masked_records(self, store: StateStore) -> None:
        value = _secret()
        await store.create_session({}, ["a"], session_id="s1")
        done = await store.write_many(
            [
                UpdateTask("a", {"error": f"key {value}"}),
                UpdateSession("s1", {"metadata": {"note": value}}),
                PutRecord("notes", "n2", {"text": value}),
            ]
        )
        for record in [*done.tasks.values(), *done.sessions.values(), *done.records.values()]:
            assert record is not None and value not in record.model_dump_json()
        assert done.tasks["a"] == await store.get_task_state("a")

    async def test_a_held_write_result_reads_as_the_store_has_it(self, store: StateStore) -> None:
        """What ``list_tasks_changed`` gives back for a record held as written (the view's
        way) holds no secret the store masked."""
        value = _secret()
        await store.create_session({}, ["a", "b"], session_id="s1")
        held = {task.task_id: task for task in await store.list_tasks("s1")}
        held["a"] = await store.update_task_state("a", {"error": f"saw {value}"})
        changes = await store.list_tasks_changed("s1", held)
        states = changes.states(held)
        assert all(value not in task.model_dump_json() for task in states.values())
        assert states == {task.task_id: task for task in await store.list_tasks("s1")}
