"""The state store contract, run against the PostgreSQL backend on a real server."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from orchestrator.state import StateStore
from orchestrator.state.postgres.store import PostgresStateStore
from orchestrator.testing.state_contract import StateStoreContract

pytestmark = pytest.mark.postgres


class TestPostgresStateStore(StateStoreContract):
    @pytest.fixture
    async def store(self, pg_dsn: str) -> AsyncIterator[StateStore]:
        async with await PostgresStateStore.connect(pg_dsn) as store:
            yield store

    @pytest.fixture
    async def store_twin(self, pg_dsn: str) -> AsyncIterator[StateStore]:
        """A second store (its own pool) on the same database, as another workstation."""
        async with await PostgresStateStore.connect(pg_dsn) as store:
            yield store


async def test_postgres_store_satisfies_the_protocol(pg_dsn: str) -> None:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        assert isinstance(store, StateStore)
