"""The notices workstations send each other through ``pg_notify``: small, naming their writer,
and turned back into the task events the scheduler's view reads."""

from __future__ import annotations

import json

from orchestrator.events import Event, EventType
from orchestrator.state.postgres.notices import MAX_PAYLOAD, encode, remote_event


def _task_update(key: str, fields: list[str]) -> Event:
    return Event(
        type=EventType.STATE_UPDATED,
        data={"kind": "tasks", "key": key, "version": 4, "fields": fields},
    )


def test_a_task_write_travels_with_its_key_version_and_fields() -> None:
    payload = encode(_task_update("t1", ["metadata", "status"]), "me")
    assert json.loads(payload) == {
        "o": "me",
        "t": "state.updated",
        "k": "tasks",
        "key": "t1",
        "v": 4,
        "f": ["metadata", "status"],
    }
    event = remote_event(payload, "you")
    assert event is not None and event.type == EventType.STATE_UPDATED
    assert event.data == {
        "kind": "tasks",
        "key": "t1",
        "version": 4,
        "fields": ["metadata", "status"],
        "remote": True,
    }


def test_a_store_drops_its_own_notices_and_what_is_not_a_task_write() -> None:
    assert remote_event(encode(_task_update("t1", ["status"]), "me"), "me") is None
    record = Event(type=EventType.STATE_UPDATED, data={"kind": "locks", "key": "k", "fields": []})
    assert remote_event(encode(record, "you"), "me") is None
    dispatched = Event(type="task.dispatched", data={"task_id": "t1", "adapter": "cli"})
    assert json.loads(encode(dispatched, "you")) == {"o": "you", "t": "task.dispatched"}
    assert remote_event(encode(dispatched, "you"), "me") is None
    # An older workstation notifies the bare event type: the periodic full read covers it.
    assert remote_event("state.updated", "me") is None
    assert remote_event("[1, 2]", "me") is None


def test_a_large_notice_drops_its_fields_then_its_key() -> None:
    many = [f"field_{n:04d}" for n in range(500)]
    payload = encode(_task_update("t1", many), "you")
    assert len(payload.encode()) <= MAX_PAYLOAD
    event = remote_event(payload, "me")
    assert event is not None
    assert event.data["key"] == "t1" and "fields" not in event.data  # read again, whatever
    huge_key = encode(_task_update("k" * (MAX_PAYLOAD * 2), ["status"]), "you")
    assert len(huge_key.encode()) <= MAX_PAYLOAD
    unnamed = remote_event(huge_key, "me")
    assert unnamed is not None and unnamed.type == EventType.STATE_RESYNC
