"""The sessions part of the state store contract: a session created with its tasks queued,
its metrics following every task change, listed oldest first, updated, recovered (tasks behind
dead claims queued again), cleaned up when old and finished; its checkpoints kept and listed
oldest first. A mixin of ``StateStoreContract``."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import ClassVar

import pytest

from orchestrator.errors import (
    RecordNotFound,
    StateError,
    VersionConflict,
)
from orchestrator.models import (
    ClaimStatus,
    SessionStatus,
    TaskStatus,
    utcnow,
)
from orchestrator.state.protocol import StateStore

__all__ = ["SessionsContract"]


class SessionsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- sessions ---------------------------------------------------------------------------

    async def test_session_creation_queues_its_tasks(self, store: StateStore) -> None:
        session = await store.create_session(
            {"config": "demo.yaml"}, ["a", {"task_id": "b", "priority": 7}], session_id="s1"
        )
        assert session.session_id == "s1" and session.task_ids == ["a", "b"]
        assert session.metrics.total == 2 and session.metrics.queued == 2
        b = await store.get_task_state("b")
        assert b is not None and b.session_id == "s1" and b.priority == 7
        assert b.status == TaskStatus.QUEUED
        assert [s.session_id for s in await store.get_active_sessions()] == ["s1"]
        assert sorted(t.task_id for t in await store.list_tasks("s1")) == ["a", "b"]
        with pytest.raises(StateError, match="already exists"):
            await store.create_session({}, ["c"], session_id="s1")

    async def test_a_session_is_created_with_its_metadata_in_one_write(
        self, store: StateStore
    ) -> None:
        heard: list[str] = []
        store.subscribe(lambda event: heard.append(event.type))
        session = await store.create_session(
            {}, [], session_id="s1", listed=["a"], metadata={"who": {"pid": 7}, "recording": True}
        )
        assert session.metadata == {"who": {"pid": 7}, "recording": True}
        kept = await store.get_session("s1", metrics=False)
        assert kept is not None and kept.metadata == session.metadata
        assert kept.version == 1 and "session.updated" not in heard
        plain = await store.create_session({}, [], session_id="s2")
        assert plain.metadata == {}

    async def test_metrics_follow_every_task_change(self, store: StateStore) -> None:
        await store.create_session({}, ["a", "b", "c", "d"], session_id="s1")
        start = utcnow()
        await store.update_task_state("a", {"status": TaskStatus.RUNNING, "started_at": start})
        await store.update_task_state(
            "b",
            {
                "status": TaskStatus.DONE,
                "started_at": start,
                "finished_at": start + timedelta(minutes=3),
            },
        )
        await store.update_task_state("c", {"status": TaskStatus.FAILED})
        session = await store.get_session("s1")
        assert session is not None
        metrics = session.metrics
        assert (metrics.total, metrics.completed, metrics.in_progress, metrics.failed) == (
            4,
            1,
            1,
            1,
        )
        assert metrics.queued == 1 and metrics.average_minutes == pytest.approx(3.0)

    async def test_list_sessions_oldest_first_whatever_their_status(
        self, store: StateStore
    ) -> None:
        assert await store.list_sessions() == []
        await store.create_session({}, ["a"], session_id="s2")
        await store.create_session({}, ["b"], session_id="s1")
        await store.update_session("s2", {"status": SessionStatus.COMPLETED})
        listed = await store.list_sessions()
        assert [s.session_id for s in listed] == ["s2", "s1"]
        assert listed[0].status == SessionStatus.COMPLETED and listed[1].metrics.total == 1
        bare = await store.list_sessions(metrics=False)  # the same sessions, not counted
        assert [
            s.model_copy(update={"metrics": m.metrics}) for s, m in zip(bare, listed, strict=True)
        ] == listed

    async def test_a_session_without_its_metrics_is_the_same_session(
        self, store: StateStore
    ) -> None:
        await store.create_session({}, ["a", "b"], session_id="s1")
        await store.update_task_state("a", {"status": TaskStatus.FAILED})
        counted = await store.get_session("s1")
        bare = await store.get_session("s1", metrics=False)
        assert counted is not None and bare is not None
        assert counted.metrics.total == 2 and counted.metrics.failed == 1
        assert bare.model_copy(update={"metrics": counted.metrics}) == counted
        updated = await store.update_session("s1", {"options": {"x": 1}}, metrics=False)
        assert updated.options == {"x": 1}
        again = await store.get_session("s1")
        assert again is not None and again.version == updated.version
        assert again.metrics == counted.metrics
        assert await store.get_session("nobody", metrics=False) is None

    async def test_update_session(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        updated = await store.update_session("s1", {"status": SessionStatus.COMPLETED})
        assert updated.status == SessionStatus.COMPLETED and updated.version == 2
        assert await store.get_active_sessions() == []
        with pytest.raises(VersionConflict):
            await store.update_session("s1", {"metadata": {}}, expected_version=1)
        with pytest.raises(StateError, match="metrics"):
            await store.update_session("s1", {"metrics": {}})
        with pytest.raises(RecordNotFound):
            await store.update_session("nope", {})

    async def test_a_task_of_an_active_session_cannot_be_taken(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        with pytest.raises(StateError, match="s1"):
            await store.create_session({}, ["a"], session_id="s2")
        await store.update_session("s1", {"status": SessionStatus.COMPLETED})
        await store.create_session({}, ["a"], session_id="s2")
        task = await store.get_task_state("a")
        assert task is not None and task.session_id == "s2" and task.status == TaskStatus.QUEUED

    async def test_recover_session_requeues_tasks_behind_dead_claims(
        self, store: StateStore
    ) -> None:
        await store.create_session({}, ["a", "b", "c"], session_id="s1")
        running = {"status": TaskStatus.RUNNING}
        lapsed = await store.acquire_claim("a", "dead", 0.01, updates=running)
        live = await store.acquire_claim("b", "alive", 600, updates=running)
        assert lapsed is not None and live is not None
        await store.update_task_state("c", {"status": TaskStatus.DONE})
        await store.update_session("s1", {"status": SessionStatus.INTERRUPTED})
        await asyncio.sleep(0.05)
        snapshot = await store.recover_session("s1")
        states = {t.task_id: t for t in snapshot.tasks}
        assert states["a"].status == TaskStatus.QUEUED
        assert states["a"].claim is not None
        assert states["a"].claim.status == ClaimStatus.ABANDONED
        assert states["b"].status == TaskStatus.RUNNING
        assert states["c"].status == TaskStatus.DONE
        assert snapshot.session.status == SessionStatus.ACTIVE
        forced = await store.recover_session("s1", force=True)
        assert {t.task_id: t.status for t in forced.tasks}["b"] == TaskStatus.QUEUED

    async def test_cleanup_removes_only_old_finished_sessions(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="old")
        await store.create_session({}, ["b"], session_id="live")
        await store.update_session("old", {"status": SessionStatus.COMPLETED})
        await store.create_checkpoint("old", "before cleanup")
        assert await store.cleanup_old_sessions(days=1) == 0
        assert await store.cleanup_old_sessions(days=-1) == 1
        assert await store.get_session("old") is None
        assert await store.get_task_state("a") is None
        assert await store.list_checkpoints("old") == []
        assert await store.get_session("live") is not None
        assert await store.get_task_state("b") is not None

    # -- checkpoints ------------------------------------------------------------------------

    async def test_checkpoint_round_trip(self, store: StateStore) -> None:
        await store.create_session({}, ["a", "b"], session_id="s1")
        await store.update_task_state("a", {"status": TaskStatus.DONE, "metadata": {"n": 1}})
        info = await store.create_checkpoint("s1", "phase done")
        assert (info.session_id, info.reason, info.task_count) == ("s1", "phase done", 2)
        await store.update_task_state("a", {"status": TaskStatus.FAILED, "metadata": {"n": 2}})
        await store.update_task_state("b", {"status": TaskStatus.CANCELLED})
        before = await store.get_task_state("a")
        assert before is not None
        snapshot = await store.restore_checkpoint(info.checkpoint_id)
        states = {t.task_id: t for t in snapshot.tasks}
        assert states["a"].status == TaskStatus.DONE and states["a"].metadata == {"n": 1}
        assert states["a"].version > before.version  # a restore is a new version
        assert states["b"].status == TaskStatus.QUEUED
        assert snapshot.session.metrics.completed == 1
        listed = await store.list_checkpoints("s1")
        assert [c.checkpoint_id for c in listed] == [info.checkpoint_id]
        full = await store.get_checkpoint(info.checkpoint_id)
        assert {t.task_id for t in full.tasks} == {"a", "b"}
        with pytest.raises(RecordNotFound):
            await store.get_checkpoint("ck-missing")
        with pytest.raises(RecordNotFound):
            await store.create_checkpoint("nope", "x")

    async def test_checkpoints_list_oldest_first(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        made = [(await store.create_checkpoint("s1", f"n{i}")).checkpoint_id for i in range(3)]
        assert [c.checkpoint_id for c in await store.list_checkpoints("s1")] == made
