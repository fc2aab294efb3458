"""The part of the state store contract about ``health()``: every backend reports the same
figures for the same records (``orchestrator.state.health``), and reading them changes
nothing."""

from __future__ import annotations

from datetime import timedelta

from orchestrator.models import utcnow
from orchestrator.state.protocol import StateStore

__all__ = ["HealthContract"]


class HealthContract:
    async def test_health_of_an_empty_store(self, store: StateStore) -> None:
        health = await store.health()
        assert health.healthy and health.findings == []
        assert health.damaged == [] and health.over_threshold == []
        assert health.oldest_active_claim is None and health.last_checkpoint_at is None
        assert health.last_checkpoint_age is None
        assert sum(health.record_counts.get(k, 0) for k in ("tasks", "sessions")) == 0

    async def test_health_counts_records_and_the_newest_checkpoint(self, store: StateStore) -> None:
        session = await store.create_session({}, ["h1", "h2"])
        await store.put_record("health-notes", "a", {"n": 1})
        before = utcnow() - timedelta(seconds=1)
        await store.create_checkpoint(session.session_id, "manual")
        health = await store.health()
        counts = health.record_counts
        assert (counts["tasks"], counts["sessions"], counts["checkpoints"]) == (2, 1, 1)
        assert counts["health-notes"] == 1
        assert health.last_checkpoint_at is not None and health.last_checkpoint_at >= before
        age = health.last_checkpoint_age
        assert age is not None and 0 <= age < 60
        assert health.event_log_bytes > 0  # the session's and checkpoint's events
        assert health.healthy and health.damaged == []
        assert {s.kind for s in health.largest_records} <= {*counts}

    async def test_health_names_the_oldest_active_claim(self, store: StateStore) -> None:
        await store.create_session({}, ["c1", "c2"])
        first = await store.acquire_claim("c1", "holder-a", 60)
        assert first is not None
        await store.acquire_claim("c2", "holder-b", 60)
        claim = (await store.health()).oldest_active_claim
        assert claim is not None and (claim.task_id, claim.holder) == ("c1", "holder-a")
        await store.release_claim("c1", first.token)
        claim = (await store.health()).oldest_active_claim
        assert claim is not None and claim.task_id == "c2"

    async def test_health_flags_records_over_the_size_threshold(self, store: StateStore) -> None:
        await store.put_record("health-notes", "small", {"text": "x"})
        await store.put_record("health-notes", "big", {"text": "y" * 5000})
        health = await store.health(large_record_bytes=2000)
        assert [(s.kind, s.key) for s in health.over_threshold] == [("health-notes", "big")]
        assert health.over_threshold[0].size > 5000
        assert (health.largest_records[0].kind, health.largest_records[0].key) == (
            "health-notes",
            "big",
        )
        assert health.large_record_bytes == 2000
        warned = [f for f in health.findings if "over 2000 bytes" in f.text]
        assert len(warned) == 1 and warned[0].level == "warning"
        assert health.healthy  # a big record is worth a look, not a failure
        assert (await store.health()).over_threshold == []  # under the default threshold

    async def test_health_reads_without_writing(self, store: StateStore) -> None:
        await store.create_session({}, ["r1"])
        task = await store.get_task_state("r1")
        await store.health()
        assert await store.get_task_state("r1") == task
