"""The claims part of the state store contract: a task claimed by one holder at a time,
fenced by tokens that only grow, a stale holder refused, live claims left by the sweep, a
release only with a final status. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from datetime import timedelta
from typing import Any, ClassVar

import pytest

from orchestrator.errors import (
    RecordNotFound,
    StaleClaim,
    StateError,
)
from orchestrator.models import (
    ClaimStatus,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.state.claim_rules import ClaimUpdatesTold
from orchestrator.state.protocol import StateStore

__all__ = ["ClaimsContract"]


class ClaimsContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

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

    async def test_a_claim_made_from_the_task_as_found_is_one_step(self, store: StateStore) -> None:
        # The caller's read and its claim in one store call: its updates are made from the
        # task as the store finds it; None claims nothing and writes nothing.
        await store.create_session({}, ["t1"], session_id="s1")
        await store.update_task_state("t1", {"attempt": 2})
        before = await store.get_task_state("t1")
        assert before is not None
        seen: list[TaskState] = []

        def refuse(task: TaskState) -> dict[str, Any] | None:
            seen.append(task)
            return None

        assert await store.acquire_claim("t1", "worker-a", 60, refuse) is None
        assert [t.version for t in seen] == [before.version]
        unchanged = await store.get_task_state("t1")
        assert unchanged is not None and unchanged.version == before.version
        assert unchanged.claim is None

        def run(task: TaskState) -> dict[str, Any] | None:
            seen.append(task)
            return {"status": TaskStatus.RUNNING, "attempt": task.attempt + 1}

        claim = await store.acquire_claim("t1", "worker-a", 60, run)
        assert claim is not None and claim.holder == "worker-a"
        task = await store.get_task_state("t1")
        assert task is not None and task.attempt == 3 and task.status == TaskStatus.RUNNING
        assert task.claim == claim and seen[-1].version == before.version
        # A live claim of another holder: refused before the caller is asked.
        asked = len(seen)
        assert await store.acquire_claim("t1", "worker-b", 60, run) is None
        assert len(seen) == asked
        with pytest.raises(RecordNotFound):
            await store.acquire_claim("nope", "worker-a", 60, run)

    async def test_a_claim_told_hands_back_the_task_it_wrote(self, store: StateStore) -> None:
        await store.create_session({}, ["t1", "t2"], session_id="s1")
        got: list[TaskState] = []

        def run(task: TaskState) -> dict[str, Any] | None:
            return {"status": TaskStatus.RUNNING, "attempt": task.attempt + 1}

        claim = await store.acquire_claim("t1", "worker-a", 60, ClaimUpdatesTold(run, got.append))
        stored = await store.get_task_state("t1")
        assert claim is not None and stored is not None and got == [stored]
        assert got[0].claim == claim and got[0].status == TaskStatus.RUNNING
        # Refused (a live claim of another holder, or the caller's None): nothing is told.
        assert await store.acquire_claim("t1", "b", 60, ClaimUpdatesTold(run, got.append)) is None
        assert await store.acquire_claim("t2", "a", 60, ClaimUpdatesTold(_no, got.append)) is None
        assert got == [stored]

    async def test_a_release_made_from_the_task_as_found_is_one_step(
        self, store: StateStore
    ) -> None:
        # The holder's last write made from the task as the store finds it under the lock.
        await store.create_session({}, ["t1"], session_id="s1")
        claim = await store.acquire_claim("t1", "worker-a", 60, {"metadata": {"kept": 1}})
        assert claim is not None
        await store.update_task_state("t1", {"metadata": {"kept": 1, "new": 2}})
        seen: list[dict[str, Any]] = []

        def done(task: TaskState) -> dict[str, Any]:
            seen.append(dict(task.metadata))
            return {"status": TaskStatus.DONE, "metadata": {**task.metadata, "end": 3}}

        released = await store.release_claim("t1", claim.token, ClaimStatus.COMPLETED, done)
        assert seen == [{"kept": 1, "new": 2}]  # the task as it was just before
        assert released.status == TaskStatus.DONE
        assert released.metadata == {"kept": 1, "new": 2, "end": 3}
        assert released.claim is not None and released.claim.status == ClaimStatus.COMPLETED
        with pytest.raises(StaleClaim):  # a token that is not live is refused, unasked
            await store.release_claim("t1", claim.token, ClaimStatus.COMPLETED, done)
        assert len(seen) == 1

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


def _no(task: TaskState) -> None:
    return None
