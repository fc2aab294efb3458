"""Several keyed records written and others deleted in one store call
(``put_and_delete_records``): each put made from its record as found (None: left alone), with
its own time to live; each deletion as ``delete_records`` makes it; a ``make`` that raises or a
deletion's version that does not match writes and deletes nothing; a record named twice is
refused. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

import pytest

from orchestrator.errors import VersionConflict
from orchestrator.models import KeyedRecord
from orchestrator.state.carried import CarriedPut
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["KeyedBatchContract"]


def _counted(namespace: str, key: str, *, ttl: float | None = None) -> CarriedPut:
    """The record with its count one more than found (a compare-and-set)."""

    def make(current: KeyedRecord | None) -> Mapping[str, Any]:
        return {"n": (current.data["n"] if current is not None else 0) + 1}

    return CarriedPut(namespace, key, make, durable=False, ttl=ttl)


def _refused(_: KeyedRecord | None) -> Mapping[str, Any]:
    raise RuntimeError("no")


class KeyedBatchContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_puts_and_deletions_in_one_call(self, store: StateStore) -> None:
        await store.put_record("sightings", "s1", {"n": 4})
        await store.put_record("collisions", "c1", {"n": 1})
        await store.put_record("collisions", "c2", {"n": 1})
        seen: list[KeyedRecord | None] = []

        def untouched(current: KeyedRecord | None) -> None:
            seen.append(current)
            return None

        written, there = await store.put_and_delete_records(
            [
                _counted("sightings", "s1", ttl=600),
                _counted("sightings", "s2", ttl=600),
                CarriedPut("collisions", "c2", untouched),
            ],
            [Deletion("collisions", "c1"), Deletion("collisions", "c9")],
        )
        assert there == [True, False]
        one, two, none = written
        assert none is None and seen and seen[0] is not None and seen[0].data == {"n": 1}
        assert one is not None and one.data == {"n": 5} and one.version == 2
        assert two is not None and two.data == {"n": 1} and two.version == 1
        assert one.expires_at is not None and two.expires_at is not None
        assert await store.get_record("collisions", "c1") is None
        kept = await store.get_record("collisions", "c2")
        assert kept is not None and kept.version == 1
        assert await store.put_and_delete_records([], []) == ([], [])

    async def test_a_refused_batch_writes_and_deletes_nothing(self, store: StateStore) -> None:
        await store.put_record("sightings", "s1", {"n": 1})
        await store.put_record("collisions", "c1", {"n": 1})
        with pytest.raises(RuntimeError):
            await store.put_and_delete_records(
                [_counted("sightings", "s1"), CarriedPut("sightings", "s2", _refused)],
                [Deletion("collisions", "c1")],
            )
        with pytest.raises(VersionConflict):
            await store.put_and_delete_records(
                [_counted("sightings", "s1")],
                [Deletion("collisions", "c1"), Deletion("collisions", "c2", 3)],
            )
        found = await store.get_record("sightings", "s1")
        assert found is not None and found.data == {"n": 1}
        assert await store.get_record("sightings", "s2") is None
        assert await store.get_record("collisions", "c1") is not None

    async def test_a_record_named_twice_is_refused(self, store: StateStore) -> None:
        with pytest.raises(ValueError, match="twice"):
            await store.put_and_delete_records(
                [_counted("sightings", "s1")], [Deletion("sightings", "s1")]
            )
        with pytest.raises(ValueError, match="twice"):
            await store.put_and_delete_records(
                [_counted("sightings", "s1"), _counted("sightings", "s1")]
            )
        assert await store.get_record("sightings", "s1") is None
