"""A claim's release made first in the deletion of records after blocking work
(``release_claim_then_delete_made``, ``claim_rules.ReleaseFirst``): the release written, then
``then``, then ``make``, then the records it names deleted; a refused release (a stale token)
runs and deletes nothing; a ``make`` that raises leaves the release written and the records
kept. A mixin of ``StateStoreContract``."""

from __future__ import annotations

from collections.abc import Sequence
from typing import ClassVar

import pytest

from orchestrator.errors import StaleClaim
from orchestrator.models import ClaimStatus, TaskState, TaskStatus
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["ReleaseFirstContract"]


class ReleaseFirstContract:
    pytestmark: ClassVar[list[pytest.MarkDecorator]] = [pytest.mark.asyncio]

    async def _claimed(self, store: StateStore) -> int:
        await store.update_task_state("t1", {"status": TaskStatus.RUNNING})
        claim = await store.acquire_claim("t1", "worker-a", 60)
        assert claim is not None
        await store.put_record("worktrees", "s1", {"path": "/w/s1"})
        await store.put_record("contexts", "s1", {"files": []})
        return claim.token

    async def test_the_release_comes_first_then_the_work_then_the_deletions(
        self, store: StateStore
    ) -> None:
        token = await self._claimed(store)
        steps: list[str] = []
        told: list[TaskState] = []

        def make() -> tuple[Sequence[Deletion], str]:
            steps.append("make")
            gone = [Deletion("worktrees", "s1"), Deletion("contexts", "s1"), Deletion("x", "y")]
            return gone, "removed"

        first = ReleaseFirst(
            "t1",
            token,
            ClaimStatus.COMPLETED,
            lambda task: {"status": TaskStatus.DONE, "attempt": task.attempt + 1},
            told.append,
            lambda: steps.append("then"),
        )
        state, found, rest = await store.release_claim_then_delete_made(first, make)
        assert steps == ["then", "make"] and rest == "removed" and found == [True, True, False]
        assert state.status == TaskStatus.DONE and state.attempt == 1
        assert state.claim is not None and state.claim.status == ClaimStatus.COMPLETED
        assert told == [state] and await store.get_task_state("t1") == state
        assert await store.get_record("worktrees", "s1") is None
        assert await store.get_record("contexts", "s1") is None
        with pytest.raises(StaleClaim):  # released: its token is no claim's any more
            await store.release_claim("t1", token)

    async def test_a_stale_release_runs_and_deletes_nothing(self, store: StateStore) -> None:
        token = await self._claimed(store)
        steps: list[str] = []
        told: list[TaskState] = []

        def make() -> tuple[Sequence[Deletion], None]:
            steps.append("make")
            return [Deletion("worktrees", "s1")], None

        stale = ReleaseFirst("t1", token + 1, ClaimStatus.COMPLETED, None, told.append)
        with pytest.raises(StaleClaim):
            await store.release_claim_then_delete_made(stale, make)
        assert steps == [] and told == []
        assert await store.get_record("worktrees", "s1") is not None
        task = await store.get_task_state("t1")
        assert task is not None and task.claim is not None
        assert task.claim.status == ClaimStatus.ACTIVE

    async def test_work_that_fails_keeps_the_release_and_the_records(
        self, store: StateStore
    ) -> None:
        token = await self._claimed(store)
        told: list[TaskState] = []

        def make() -> tuple[Sequence[Deletion], None]:
            raise RuntimeError("the removal failed")

        first = ReleaseFirst("t1", token, ClaimStatus.ABANDONED, {}, told.append)
        with pytest.raises(RuntimeError, match="the removal failed"):
            await store.release_claim_then_delete_made(first, make)
        task = await store.get_task_state("t1")
        assert task is not None and task.claim is not None and told == [task]
        assert task.claim.status == ClaimStatus.ABANDONED
        assert await store.get_record("worktrees", "s1") is not None
