"""The events part of the state store contract: what the store does reaches its subscribers
(a broken one harms nobody else, one unsubscribed hears no more), and a healthy store's own
check (``verify_records``) finds nothing. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from orchestrator.events import Event, EventType
from orchestrator.state.protocol import StateStore

__all__ = ["EventsContract"]


class EventsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- events -----------------------------------------------------------------------------

    async def test_events_reach_subscribers(self, store: StateStore) -> None:
        seen: list[Event] = []

        def broken(event: Event) -> None:
            raise RuntimeError("a plugin bug")

        store.subscribe(broken)
        store.subscribe(seen.append)
        await store.create_session({}, ["a"], session_id="s1")
        await store.update_task_state("a", {"priority": 1})
        await store.create_checkpoint("s1", "x")
        await store.emit(Event(type="custom.thing", data={"k": "v"}))
        store.unsubscribe(seen.append)
        await store.update_task_state("a", {"priority": 2})
        types = [e.type for e in seen]
        for expected in (
            EventType.SESSION_CREATED,
            EventType.STATE_UPDATED,
            EventType.CHECKPOINT_CREATED,
            "custom.thing",
        ):
            assert expected in types
        updates: list[dict[str, Any]] = [e.data for e in seen if e.type == EventType.STATE_UPDATED]
        assert {"kind": "tasks", "key": "a", "version": 2, "fields": ["priority"]} in updates
        assert not any(e.data.get("version") == 3 for e in seen)

    async def test_verify_on_a_healthy_store_finds_nothing(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        assert await store.verify_records() == []
