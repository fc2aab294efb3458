"""The contract every ``StateStore`` backend must pass, as a reusable pytest class.

A backend's test module subclasses ``StateStoreContract`` and provides a ``store`` fixture::

    class TestMyStore(StateStoreContract):
        @pytest.fixture
        async def store(self, tmp_path):
            async with MyStore(...) as store:
                yield store

Tests only use the protocol, so they hold for any backend (file now, PostgreSQL later).
"""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any, ClassVar

import anyio
import pytest

from orchestrator.errors import (
    InvalidIdError,
    RecordNotFound,
    StaleClaim,
    StateError,
    VersionConflict,
)
from orchestrator.events import Event, EventType
from orchestrator.models import (
    ClaimStatus,
    KeyedRecord,
    SessionStatus,
    TaskStatus,
    utcnow,
)
from orchestrator.state.conflicts import (
    ConflictStrategy,
    MergeConflict,
    PendingConflict,
    atomic_update,
    list_conflicts,
    resolve_conflict,
    write_with_strategy,
)
from orchestrator.state.protocol import StateStore
from orchestrator.testing.contract_context import ContextContract
from orchestrator.testing.contract_health import HealthContract
from orchestrator.testing.contract_history import HistoryContract
from orchestrator.testing.contract_task_strategies import TaskStrategiesContract
from orchestrator.testing.contract_transactions import TransactionsContract
from orchestrator.testing.contract_ttl import TtlContract
from orchestrator.testing.contract_validators import ValidatorsContract
from orchestrator.testing.contract_watch import WatchContract

__all__ = ["StateStoreContract"]


class StateStoreContract(
    HistoryContract,
    TtlContract,
    ContextContract,
    HealthContract,
    TransactionsContract,
    WatchContract,
    ValidatorsContract,
    TaskStrategiesContract,
):
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    # -- tasks ------------------------------------------------------------------------------

    async def test_missing_task_is_none(self, store: StateStore) -> None:
        assert await store.get_task_state("nope") is None

    async def test_update_creates_merges_and_bumps_version(self, store: StateStore) -> None:
        first = await store.update_task_state("t1", {"priority": 5, "metadata": {"a": 1}})
        assert (first.task_id, first.version, first.priority) == ("t1", 1, 5)
        second = await store.update_task_state("t1", {"status": TaskStatus.RUNNING})
        assert second.version == 2
        assert second.priority == 5 and second.metadata == {"a": 1}
        assert second.status == TaskStatus.RUNNING
        assert second.updated_at >= first.updated_at
        assert second.created_at == first.created_at
        assert await store.get_task_state("t1") == second

    async def test_expected_version_is_compare_and_set(self, store: StateStore) -> None:
        await store.update_task_state("t1", {}, expected_version=0)
        with pytest.raises(VersionConflict) as caught:
            await store.update_task_state("t1", {}, expected_version=0)
        assert (caught.value.expected, caught.value.actual) == (0, 1)
        await store.update_task_state("t1", {"priority": 1}, expected_version=1)
        with pytest.raises(VersionConflict):
            await store.update_task_state("t1", {"priority": 2}, expected_version=1)
        task = await store.get_task_state("t1")
        assert task is not None and (task.version, task.priority) == (2, 1)

    async def test_store_owned_fields_are_ignored(self, store: StateStore) -> None:
        task = await store.update_task_state("t1", {"version": 99, "task_id": "t1"})
        assert task.version == 1

    async def test_invalid_update_writes_nothing(self, store: StateStore) -> None:
        await store.update_task_state("t1", {"priority": 1})
        with pytest.raises(StateError, match="status"):
            await store.update_task_state("t1", {"status": "exploded"})
        with pytest.raises(StateError, match="no_such_field"):
            await store.update_task_state("t1", {"no_such_field": 1})
        task = await store.get_task_state("t1")
        assert task is not None and task.version == 1

    @pytest.mark.parametrize("bad", ["../x", "", "A", ".hidden", "a/b", "x" * 65, "a..b"])
    async def test_unsafe_task_ids_are_refused(self, store: StateStore, bad: str) -> None:
        with pytest.raises(InvalidIdError):
            await store.update_task_state(bad, {})
        with pytest.raises(InvalidIdError):
            await store.get_task_state(bad)

    async def test_history_keeps_the_last_ten_versions(self, store: StateStore) -> None:
        for n in range(15):
            await store.update_task_state("t1", {"priority": n})
        history = await store.task_history("t1")
        assert [h.version for h in history] == list(range(14, 4, -1))
        assert [h.priority for h in history] == list(range(13, 3, -1))

    async def test_the_identity_of_the_data_holds_across_calls_and_writes(
        self, store: StateStore
    ) -> None:
        first = await store.identity()
        assert first
        await store.update_task_state("t1", {"priority": 1})
        await store.create_session({}, [{"task_id": "t2"}])
        assert await store.identity() == first

    async def test_list_tasks(self, store: StateStore) -> None:
        for task_id in ("b", "a"):
            await store.update_task_state(task_id, {})
        assert sorted(t.task_id for t in await store.list_tasks()) == ["a", "b"]

    # -- claims -----------------------------------------------------------------------------

    async def test_claim_is_exclusive_until_released(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        claim = await store.acquire_claim(
            "t1", "worker-a", 60, updates={"status": TaskStatus.RUNNING}
        )
        assert claim is not None and claim.holder == "worker-a"
        task = await store.get_task_state("t1")
        assert task is not None and task.status == TaskStatus.RUNNING and task.claim == claim
        assert await store.acquire_claim("t1", "worker-b", 60) is None
        renewed = await store.renew_claim("t1", claim.token, 120)
        assert renewed.token == claim.token and renewed.expires_at > claim.expires_at
        done = await store.release_claim(
            "t1", claim.token, ClaimStatus.COMPLETED, updates={"status": TaskStatus.DONE}
        )
        assert done.claim is not None and done.claim.status == ClaimStatus.COMPLETED
        assert done.status == TaskStatus.DONE
        again = await store.acquire_claim("t1", "worker-b", 60)
        assert again is not None and again.token > claim.token

    async def test_a_claim_on_the_version_read_fails_once_the_task_was_written(
        self, store: StateStore
    ) -> None:
        # Another workstation ran and ended the task between this one's read and its claim.
        await store.create_session({}, ["t1"], session_id="s1")
        seen = await store.get_task_state("t1")
        assert seen is not None
        other = await store.acquire_claim("t1", "worker-b", 60)
        assert other is not None
        await store.release_claim("t1", other.token, updates={"status": TaskStatus.DONE})
        late = await store.acquire_claim(
            "t1", "worker-a", 60, {"status": TaskStatus.RUNNING}, expected_version=seen.version
        )
        assert late is None
        task = await store.get_task_state("t1")
        assert task is not None and task.status == TaskStatus.DONE
        fresh = await store.acquire_claim("t1", "worker-a", 60, expected_version=task.version)
        assert fresh is not None and fresh.holder == "worker-a"

    async def test_a_holder_claiming_again_keeps_its_claim(self, store: StateStore) -> None:
        # Its first claim may have been committed while the answer was lost: claiming again
        # must not lock it out of its own task until the lease lapses.
        await store.create_session({}, ["t1"], session_id="s1")
        first = await store.acquire_claim("t1", "worker-a", 60)
        assert first is not None
        again = await store.acquire_claim("t1", "worker-a", 120, {"attempt": 2})
        assert again is not None and again.token == first.token
        assert again.expires_at > first.expires_at
        task = await store.get_task_state("t1")
        assert task is not None and task.attempt == 2 and task.claim == again
        assert await store.acquire_claim("t1", "worker-b", 60) is None

    async def test_fencing_refuses_a_stale_holder(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        old = await store.acquire_claim("t1", "worker-a", 0.05)
        assert old is not None
        await store.update_task_state("t1", {"priority": 1}, fencing_token=old.token)
        swept = await store.sweep_expired_claims(now=utcnow() + timedelta(seconds=1))
        assert [c.token for c in swept] == [old.token]
        assert swept[0].status == ClaimStatus.EXPIRED
        new = await store.acquire_claim("t1", "worker-b", 60)
        assert new is not None and new.token > old.token
        with pytest.raises(StaleClaim):
            await store.update_task_state("t1", {"priority": 2}, fencing_token=old.token)
        with pytest.raises(StaleClaim):
            await store.renew_claim("t1", old.token, 60)
        with pytest.raises(StaleClaim):
            await store.release_claim("t1", old.token)
        await store.update_task_state("t1", {"priority": 3}, fencing_token=new.token)
        task = await store.get_task_state("t1")
        assert task is not None and task.priority == 3 and task.claim == new

    async def test_sweep_leaves_live_claims(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        claim = await store.acquire_claim("t1", "worker-a", 600)
        assert claim is not None
        assert await store.sweep_expired_claims() == []
        task = await store.get_task_state("t1")
        assert task is not None and task.claim is not None and task.claim.is_live()

    async def test_tokens_grow_across_tasks(self, store: StateStore) -> None:
        tokens = []
        for task_id in ("a", "b", "c"):
            await store.update_task_state(task_id, {})
            claim = await store.acquire_claim(task_id, "w", 60)
            assert claim is not None
            tokens.append(claim.token)
        assert tokens == sorted(set(tokens))

    async def test_claiming_a_missing_task_fails(self, store: StateStore) -> None:
        with pytest.raises(RecordNotFound):
            await store.acquire_claim("ghost", "w", 60)

    async def test_release_status_must_be_final(self, store: StateStore) -> None:
        await store.update_task_state("t1", {})
        claim = await store.acquire_claim("t1", "w", 60)
        assert claim is not None
        with pytest.raises(StateError):
            await store.release_claim("t1", claim.token, ClaimStatus.ACTIVE)

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

    # -- keyed records ----------------------------------------------------------------------

    async def test_keyed_records(self, store: StateStore) -> None:
        assert await store.get_record("worktrees", "s1") is None
        first = await store.put_record("worktrees", "s1", {"task": "a"}, expected_version=0)
        assert (first.namespace, first.key, first.version, first.data) == (
            "worktrees",
            "s1",
            1,
            {"task": "a"},
        )
        with pytest.raises(VersionConflict):
            await store.put_record("worktrees", "s1", {"task": "b"}, expected_version=0)
        second = await store.put_record("worktrees", "s1", {"cli": "x"}, expected_version=1)
        assert second.version == 2 and second.data == {"cli": "x"}  # data is replaced whole
        await store.put_record("worktrees", "s2", {})
        await store.put_record("owners", "s1", {"other": True})
        listed = await store.list_records("worktrees")
        assert [r.key for r in listed] == ["s1", "s2"]
        with pytest.raises(VersionConflict):
            await store.delete_record("worktrees", "s1", expected_version=1)
        assert await store.delete_record("worktrees", "s1", expected_version=2)
        assert not await store.delete_record("worktrees", "s1")
        assert await store.get_record("worktrees", "s1") is None
        assert await store.get_record("owners", "s1") is not None
        again = await store.put_record("worktrees", "s1", {"n": 1}, expected_version=0)
        assert again.version == 1
        with pytest.raises(InvalidIdError):
            await store.put_record("../x", "k", {})
        with pytest.raises(InvalidIdError):
            await store.put_record("ns", "../k", {})

    # -- conflicts (``state.conflicts``: built on the protocol, so proven per backend) -----

    async def test_atomic_update_loses_no_concurrent_change(self, store: StateStore) -> None:
        def add_one(data: dict[str, Any]) -> dict[str, Any]:
            return {**data, "count": data.get("count", 0) + 1, f"by{len(data)}": True}

        async with anyio.create_task_group() as group:
            for _ in range(20):
                group.start_soon(atomic_update, store, "counters", "c", add_one)
        final = await store.get_record("counters", "c")
        assert final is not None and final.data["count"] == 20 and final.version == 20

    async def test_first_write_wins_refuses_a_late_write(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1})
        await store.put_record("cfg", "k", {"a": 2}, expected_version=read.version)
        with pytest.raises(VersionConflict):
            await write_with_strategy(store, "cfg", "k", {"a": 3}, based_on=read)
        assert (await store.get_record("cfg", "k")).data == {"a": 2}  # type: ignore[union-attr]

    async def test_last_write_wins_replaces_what_is_there(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1})
        await store.put_record("cfg", "k", {"a": 2})
        written = await write_with_strategy(
            store, "cfg", "k", {"a": 3}, based_on=read, strategy=ConflictStrategy.LAST_WRITE_WINS
        )
        assert isinstance(written, KeyedRecord) and written.data == {"a": 3}

    async def test_merge_combines_changes_and_refuses_a_clash(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1, "n": {"x": 1}, "tags": ["t"]})
        await store.put_record("cfg", "k", {"a": 2, "n": {"x": 1}, "tags": ["t", "theirs"]})
        mine = {"a": 1, "n": {"x": 1, "y": 2}, "tags": ["t", "mine"]}
        merged = await write_with_strategy(
            store, "cfg", "k", mine, based_on=read, strategy=ConflictStrategy.MERGE
        )
        assert isinstance(merged, KeyedRecord)
        assert merged.data == {"a": 2, "n": {"x": 1, "y": 2}, "tags": ["t", "theirs", "mine"]}
        with pytest.raises(MergeConflict) as clash:
            await write_with_strategy(
                store, "cfg", "k", {**mine, "a": 5}, based_on=read, strategy=ConflictStrategy.MERGE
            )
        assert clash.value.paths == ["a"]
        assert (await store.get_record("cfg", "k")) == merged  # nothing written

    async def test_manual_keeps_a_late_write_aside_until_resolved(self, store: StateStore) -> None:
        read = await store.put_record("cfg", "k", {"a": 1, "b": 1})
        theirs = await store.put_record("cfg", "k", {"a": 2, "b": 1})
        kept = await write_with_strategy(
            store, "cfg", "k", {"a": 3, "b": 1}, based_on=read, strategy=ConflictStrategy.MANUAL
        )
        assert isinstance(kept, PendingConflict) and kept.fields == ["a"]
        assert (await store.get_record("cfg", "k")) == theirs  # the record is untouched
        assert [c.conflict_id for c in await list_conflicts(store)] == [kept.conflict_id]
        settled = await resolve_conflict(store, kept.conflict_id, "ours")
        assert (
            isinstance(settled, KeyedRecord)
            and settled.data == {"a": 3, "b": 1}
            and settled.version == theirs.version + 1
        )
        assert await list_conflicts(store) == []
        # A conflict settled against a record that moved again is refused, nothing written.
        again = await write_with_strategy(
            store, "cfg", "k", {"a": 4, "b": 1}, based_on=theirs, strategy=ConflictStrategy.MANUAL
        )
        assert isinstance(again, PendingConflict)
        await store.put_record("cfg", "k", {"a": 9, "b": 9})
        with pytest.raises(VersionConflict):
            await resolve_conflict(store, again.conflict_id, "theirs")
        assert [c.conflict_id for c in await list_conflicts(store)] == [again.conflict_id]

    # -- events -----------------------------------------------------------------------------

    async def test_events_reach_subscribers(self, store: StateStore) -> None:
        seen: list[Event] = []

        def broken(event: Event) -> None:
            raise RuntimeError("a plugin bug")

        store.subscribe(broken)
        store.subscribe(seen.append)
        await store.create_session({}, ["a"], session_id="s1")
        await store.update_task_state("a", {"priority": 1})
        await store.create_checkpoint("s1", "x")
        await store.emit(Event(type="custom.thing", data={"k": "v"}))
        store.unsubscribe(seen.append)
        await store.update_task_state("a", {"priority": 2})
        types = [e.type for e in seen]
        for expected in (
            EventType.SESSION_CREATED,
            EventType.STATE_UPDATED,
            EventType.CHECKPOINT_CREATED,
            "custom.thing",
        ):
            assert expected in types
        updates: list[dict[str, Any]] = [e.data for e in seen if e.type == EventType.STATE_UPDATED]
        assert {"kind": "tasks", "key": "a", "version": 2, "fields": ["priority"]} in updates
        assert not any(e.data.get("version") == 3 for e in seen)

    async def test_verify_on_a_healthy_store_finds_nothing(self, store: StateStore) -> None:
        await store.create_session({}, ["a"], session_id="s1")
        assert await store.verify_records() == []
