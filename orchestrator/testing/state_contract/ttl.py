"""The expiry part of the state store contract: a keyed record written with a ``ttl`` reads as
absent once it expired and ``purge_expired`` removes it; one written without lasts. A mixin
of ``StateStoreContract``. Expiry is checked with a short ttl for reads and a ``now`` given to
``purge_expired`` for the sweep, so nothing waits long."""

from __future__ import annotations

from datetime import timedelta
from typing import ClassVar

import anyio
import pytest

from orchestrator.errors import StateError, VersionConflict
from orchestrator.models import utcnow
from orchestrator.state.protocol import StateStore

__all__ = ["TtlContract"]

_SHORT = 0.1  # seconds: expired after a short sleep
_PAST_SHORT = 0.3


class TtlContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def test_a_record_with_a_ttl_carries_its_expiry(self, store: StateStore) -> None:
        before = utcnow()
        record = await store.put_record("presence", "w1", {"at": "here"}, ttl=60)
        assert record.expires_at is not None
        # The store's clock may be another machine's: allow it a little drift.
        assert before + timedelta(seconds=50) < record.expires_at < before + timedelta(seconds=70)
        read = await store.get_record("presence", "w1")
        assert read is not None and read.expires_at == record.expires_at
        lasting = await store.put_record("presence", "w1", {"at": "here"})
        assert lasting.expires_at is None

    async def test_an_expired_record_reads_as_absent(self, store: StateStore) -> None:
        await store.put_record("presence", "gone", {"n": 1}, ttl=_SHORT)
        await store.put_record("presence", "kept", {"n": 2})
        await anyio.sleep(_PAST_SHORT)
        assert await store.get_record("presence", "gone") is None
        assert [r.key for r in await store.list_records("presence")] == ["kept"]
        assert await store.delete_record("presence", "gone") is False

    async def test_an_expired_record_is_absent_to_compare_and_set(self, store: StateStore) -> None:
        first = await store.put_record("parks", "p1", {"n": 1}, ttl=_SHORT)
        await anyio.sleep(_PAST_SHORT)
        with pytest.raises(VersionConflict):
            await store.put_record("parks", "p1", {"n": 2}, expected_version=first.version)
        again = await store.put_record("parks", "p1", {"n": 2}, expected_version=0)
        assert again.version > first.version  # its versions go on past the expired one
        assert again.expires_at is None

    async def test_purge_removes_only_what_expired(self, store: StateStore) -> None:
        await store.put_record("presence", "w1", {"n": 1}, ttl=60)
        await store.put_record("context", "c1", {"n": 2}, ttl=600)
        await store.put_record("presence", "w2", {"n": 3})
        assert await store.purge_expired(now=utcnow() + timedelta(seconds=120)) == 1
        assert await store.get_record("presence", "w1") is None
        assert await store.record_history("records/presence", "w1") == []
        assert await store.get_record("context", "c1") is not None
        assert await store.get_record("presence", "w2") is not None
        assert await store.purge_expired(now=utcnow() + timedelta(days=1)) == 1
        assert await store.purge_expired() == 0

    async def test_purge_without_a_moment_uses_the_store_clock(self, store: StateStore) -> None:
        await store.put_record("presence", "w1", {"n": 1}, ttl=_SHORT)
        await anyio.sleep(_PAST_SHORT)
        assert await store.purge_expired() == 1
        assert await store.list_records("presence") == []

    async def test_a_ttl_that_is_not_positive_is_refused(self, store: StateStore) -> None:
        for ttl in (0, -1.0):
            with pytest.raises(StateError, match="ttl"):
                await store.put_record("presence", "w1", {}, ttl=ttl)
        assert await store.get_record("presence", "w1") is None
