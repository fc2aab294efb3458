"""Keyed records carried in another store call (``put_made_record_and_task_carrying``).

A room that writes a record right after another room's store call (a session's context, with
the files a phase changed, after the phase recorded complete) hands it over as a ``CarriedPut``
instead of making a store call of its own: the store writes it after that call's own writes,
in the same call where it makes one (the file store: one worker-thread call; its lock taken
with the call's others, before anything is written).

``make(current)`` gives the record's data from the record as found (None: none, or expired),
or None to write nothing: the room's compare-and-set, with no retries where the store holds
the record's lock while it makes it (the file store); elsewhere (``state.carried_in_turn``)
a compare-and-set of its own, made again from a fresh read when someone wrote in between, as
the room's own call did. It is blocking work, and must not raise for anything but a record
it cannot merge: what it raises is raised, and nothing of the call is written.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord

__all__ = ["CarriedPut", "Carrier", "checked_carried"]


@dataclass(frozen=True, slots=True)
class CarriedPut:
    """One record written after a store call's own writes, in that call (module doc)."""

    namespace: str
    key: str
    make: Callable[[KeyedRecord | None], Mapping[str, Any] | None]
    durable: bool = True
    ttl: float | None = None


@dataclass(frozen=True, slots=True)
class Carrier:
    """A carried record (``put``) with what its room does once the call that carried it is
    over (``done``, on the event loop: given the record written, None when none was)."""

    put: CarriedPut
    done: Callable[[KeyedRecord | None], None]


def checked_carried(carried: Sequence[CarriedPut], *taken: tuple[str, str]) -> list[CarriedPut]:
    """``carried``, when each names a record once and none of ``taken`` (the call's own
    records); ``ValueError`` naming the record written twice, ``InvalidId`` a bad name."""
    seen = set(taken)
    for put in carried:
        check_id(put.namespace, "carried record's namespace")
        check_id(put.key, f"carried {put.namespace} key")
        place = (put.namespace, put.key)
        if place in seen:
            raise ValueError(f"record {put.namespace}/{put.key} written twice in one store call")
        seen.add(place)
    return list(carried)
