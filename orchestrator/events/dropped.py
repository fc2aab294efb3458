"""``EventsDropped``: the one event no emitter sends. An event iterator (``Council.events``)
whose consumer fell behind puts it where the events it had to drop would have been."""

from __future__ import annotations

from typing import Literal

from orchestrator.events.base import TypedEvent

__all__ = ["EventsDropped"]


class EventsDropped(TypedEvent):
    """``count`` events were dropped here: the iterator's buffer was full."""

    type: Literal["events.dropped"] = "events.dropped"
    level: str = "warning"
    count: int
