"""A radar pass's writes, gathered as the pass finds them and made in one store call
(``PassWrites``; ``StateStore.put_and_delete_records``): every sighting published, every
sighting of a session that ended deleted, every collision written or resolved. One worker-thread
call on the file store, one transaction on PostgreSQL, however many sessions moved.

A collision is written as a compare-and-set under its record's lock (``state.carried``): not
written when the record found says the same finding; ``radar.collision`` said by its creator
(the record was not there), again when the write makes it graver (``escalated_from``);
``radar.resolved`` by the deleter of a record that was there. A record's first action in a pass
stands (a pair's finding before a sweep's resolution of it).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import anyio

from orchestrator.events import Event
from orchestrator.models import KeyedRecord
from orchestrator.radar.findings import collision_event, resolved_event
from orchestrator.radar.records import COLLISIONS, SIGHTINGS, Collision, Sighting, read_collision
from orchestrator.state.carried import CarriedPut
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["Committed", "PassWrites"]


@dataclass(slots=True)
class Committed:
    """What a pass's store call did."""

    published: dict[str, float] = field(default_factory=dict)  # session -> when written
    changes: int = 0  # collision records written or removed
    live: dict[str, Collision] = field(default_factory=dict)  # ``stored`` with the writes made


@dataclass
class PassWrites:
    """The writes of one pass (module doc); ``ttl``: a sighting's time to live."""

    ttl: float
    _sightings: dict[str, Sighting] = field(default_factory=dict)
    _forgotten: dict[str, None] = field(default_factory=dict)  # sightings deleted, in order
    _found: dict[str, tuple[Collision, Collision | None]] = field(default_factory=dict)
    _resolved: dict[str, tuple[Collision, str]] = field(default_factory=dict)

    def publish(self, sighting: Sighting) -> None:
        self._sightings[sighting.session_id] = sighting

    def forget(self, session_id: str) -> None:
        """``session_id``'s sighting deleted (its session ended)."""
        self._sightings.pop(session_id, None)
        self._forgotten[session_id] = None

    def write(self, found: Collision, stored: Collision | None) -> None:
        """``found`` written unless its record says the same finding (``stored``: as read at
        the pass's start)."""
        if found.key not in self._resolved:
            self._found.setdefault(found.key, (found, stored))

    def resolve(self, found: Collision, reason: str) -> None:
        if found.key not in self._found:
            self._resolved.setdefault(found.key, (found, reason))

    def acted(self, key: str) -> bool:
        """Whether the collision ``key`` is written or resolved by this pass already."""
        return key in self._found or key in self._resolved

    async def commit(self, store: StateStore, stored: Mapping[str, Collision]) -> Committed:
        """Every write in one store call, then the events; what was done, with ``stored``
        (the live collisions read at the pass's start) as the writes left them."""
        done = Committed(live=dict(stored))
        if not (self._sightings or self._forgotten or self._found or self._resolved):
            return done
        said: dict[str, Event] = {}
        puts = [_sighting_put(s, self.ttl) for s in self._sightings.values()]
        puts += [_collision_put(found, said) for found, _ in self._found.values()]
        deletions = [Deletion(SIGHTINGS, sid) for sid in self._forgotten]
        deletions += [Deletion(COLLISIONS, key) for key in self._resolved]
        written, there = await store.put_and_delete_records(puts, deletions)
        now = anyio.current_time()
        sightings = len(self._sightings)
        done.published = dict.fromkeys(self._sightings, now)
        for (found, _), record in zip(self._found.values(), written[sightings:], strict=True):
            if record is not None:
                done.changes += 1
                done.live[found.key] = found
            elif found.key not in done.live:
                done.live[found.key] = found  # the record found says the same
        for (found, reason), gone in zip(
            self._resolved.values(), there[len(self._forgotten) :], strict=True
        ):
            done.live.pop(found.key, None)
            if gone:
                done.changes += 1
                said[found.key] = resolved_event(found, reason)
        for event in said.values():
            await store.emit(event)
        return done


def _sighting_put(sighting: Sighting, ttl: float) -> CarriedPut:
    data = sighting.model_dump(mode="json")
    return CarriedPut(SIGHTINGS, sighting.session_id, lambda _: data, durable=False, ttl=ttl)


def _collision_put(found: Collision, said: dict[str, Event]) -> CarriedPut:
    """``found``'s write, made from its record as found under its lock (module doc)."""

    def make(current: KeyedRecord | None) -> dict[str, Any] | None:
        said.pop(found.key, None)  # (made again when a store runs its transaction again)
        if current is None:
            said[found.key] = collision_event(found)  # created here: said once, by its creator
            return found.stored()
        before = read_collision(current.data)
        if before is not None and before.same_finding(found):
            return None
        if before is not None and found.severity.rank > before.severity.rank:
            # graver than it was (same lines now, or a merge that now conflicts): said again,
            # once, by the writer of the graver record
            said[found.key] = collision_event(found, escalated_from=before.severity.value)
        return found.stored()

    return CarriedPut(COLLISIONS, found.key, make, durable=False)
