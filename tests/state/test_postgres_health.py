"""The PostgreSQL backend's own parts of health and housekeeping, on a real server: the health
report's database figures, and the events of the sessions ``cleanup_old_sessions`` removes
going with them."""

from __future__ import annotations

import psycopg
import pytest

from orchestrator.models import SessionStatus
from orchestrator.state.postgres.schema import MIGRATIONS
from orchestrator.state.postgres.store import PostgresStateStore

pytestmark = pytest.mark.postgres


async def test_health_reports_latency_schema_and_table_sizes(pg_dsn: str) -> None:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        await store.create_session({}, ["p1"])
        health = await store.health()
    details = health.backend_details
    assert health.backend == "postgresql" and health.healthy
    assert "password" not in health.where
    assert 0 < details["latency_ms"] < 5000
    assert details["schema_version"] == details["schema_version_known"] == len(MIGRATIONS)
    assert set(details["table_bytes"]) >= {"tasks", "sessions", "checkpoints", "events"}
    assert all(size > 0 for size in details["table_bytes"].values())
    assert details["events"] >= 1 and health.event_log_bytes == details["table_bytes"]["events"]


async def _events(dsn: str) -> list[tuple[str, str | None]]:
    async with await psycopg.AsyncConnection.connect(dsn) as conn:
        cursor = await conn.execute(
            "SELECT type, coalesce(data->>'session_id', data->>'key') FROM council.events"
        )
        return [(row[0], row[1]) for row in await cursor.fetchall()]


async def test_session_cleanup_drops_the_events_older_than_every_kept_session(
    pg_dsn: str,
) -> None:
    async with await PostgresStateStore.connect(pg_dsn) as store:
        old = await store.create_session({}, ["gone"])
        await store.update_session(old.session_id, {"status": SessionStatus.COMPLETED})
        kept = await store.create_session({}, ["stays"])
        await store.update_task_state("stays", {"priority": 1})
        assert any(key == old.session_id for _, key in await _events(pg_dsn))

        assert await store.cleanup_old_sessions(0) == 1
        left = await _events(pg_dsn)
    told = [(kind, key) for kind, key in left if kind != "session.removed"]
    assert not any(key in (old.session_id, "gone") for _, key in told)
    assert ("session.created", kept.session_id) in left and ("state.updated", "stays") in left
    assert ("session.removed", old.session_id) in left  # what the cleanup itself did
