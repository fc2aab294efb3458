"""A PostgreSQL store call while the database cannot be reached (``state.postgres.outages``):
tried again on connection-class errors until its deadline, then ``StoreUnavailable`` naming
the database; any other error at once; a call that succeeds is tried once."""

from __future__ import annotations

import psycopg
import pytest

from orchestrator.errors import StoreUnavailable, VersionConflict
from orchestrator.state.postgres.outages import resilient

pytestmark = pytest.mark.asyncio


class Flaky:
    """Fails with ``error`` the first ``failures`` times it is called, then answers 42."""

    def __init__(self, failures: int, error: Exception) -> None:
        self.failures, self.error, self.calls = failures, error, 0

    async def __call__(self) -> int:
        self.calls += 1
        if self.calls <= self.failures:
            raise self.error
        return 42


async def test_a_call_that_answers_is_tried_once() -> None:
    call = Flaky(0, psycopg.OperationalError("x"))
    assert await resilient(call, "db") == 42
    assert call.calls == 1


async def test_a_passing_outage_is_tried_again() -> None:
    call = Flaky(2, psycopg.OperationalError("server closed the connection"))
    assert await resilient(call, "db", deadline=30) == 42
    assert call.calls == 3


async def test_a_lasting_outage_ends_unavailable_naming_the_database() -> None:
    call = Flaky(10**6, psycopg.OperationalError("connection refused\nmore"))
    with pytest.raises(StoreUnavailable, match=r"database db cannot be reached \(connection "):
        await resilient(call, "db", deadline=0.3)
    assert call.calls >= 2


async def test_a_first_try_longer_than_the_deadline_is_not_tried_again() -> None:
    call = Flaky(10**6, psycopg.OperationalError("timeout"))
    with pytest.raises(StoreUnavailable):
        await resilient(call, "db", deadline=0)
    assert call.calls == 1


async def test_any_other_error_is_raised_at_once() -> None:
    call = Flaky(1, VersionConflict("records/ns/k", 1, 2))
    with pytest.raises(VersionConflict):
        await resilient(call, "db")
    assert call.calls == 1
