"""Queueing an ended task again (``scheduler.retry``) on a real file store: a retry's fresh
start of the failure count with the work kept, the refusals, a cancel request left behind
dropped, and a rebase's resolve round on the recorded open pull request."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import anyio
import pytest

from orchestrator.config.sections import RetryConfig
from orchestrator.errors import RecordNotFound, RequeueError
from orchestrator.events import Event, EventType
from orchestrator.models import TaskState, TaskStatus, utcnow
from orchestrator.retry import GiveUp, Retry, RetryPolicy
from orchestrator.scheduler.cancel import CANCEL_REQUESTS
from orchestrator.scheduler.context import Services
from orchestrator.scheduler.retry import RETRY_KEYS, request_rebase, request_retry
from orchestrator.state import FileStateStore
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

PULL = "pull"  # the task record's key of its pull request (``PullMeta.pull``)

SPENT = {
    "failures": 3,
    "rechecks": 1,
    "empty_builds": 1,
    "retry_note": "changed nothing",
    "not_before": "2030-01-01T00:00:00+00:00",
    "outcome": "crashed",
    "parks": 2,
    "parked_until": "2030-01-01T00:00:00+00:00",
    "parked_adapter": "cli",
    "rate_limited_since": "2029-12-31T00:00:00+00:00",
    "resolve_rounds": 1,
    "worktree_losses": 1,
    "conflicts": ["a.txt"],
}
KEPT = {"worktree_session": "t.abc123", "usage": {"cost_usd": 0.5}, "issue": 7}


def run(body: Callable[[FileStateStore], Awaitable[None]], tmp_path: Path) -> None:
    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            await body(store)

    anyio.run(main)


async def ended(store: FileStateStore, status: TaskStatus, **extra: Any) -> TaskState:
    fields: dict[str, Any] = {
        "session_id": "s1",
        "status": status,
        "attempt": 4,
        "branch": "council/t/1",
        "current_phase": "build",
        "error": "it went wrong",
        "finished_at": utcnow(),
        "metadata": {**SPENT, **KEPT},
        **extra,
    }
    return await store.update_task_state("t", fields)


@pytest.mark.parametrize("status", [TaskStatus.FAILED, TaskStatus.CONFLICT, TaskStatus.CANCELLED])
def test_an_ended_task_is_queued_again_with_its_whole_allowance_and_its_work(
    tmp_path: Path, status: TaskStatus
) -> None:
    async def body(store: FileStateStore) -> None:
        before = await ended(store, status)
        await store.put_record(CANCEL_REQUESTS, "t", {"session_id": "s1"})
        after = await request_retry(store, "t")
        assert after.version == before.version + 1
        assert after.status == TaskStatus.QUEUED
        assert (after.error, after.finished_at, after.current_phase) == (None, None, None)
        assert after.metadata == KEPT  # the count gone, the worktree and usage kept
        assert (after.branch, after.attempt) == ("council/t/1", 4)
        assert await store.get_record(CANCEL_REQUESTS, "t") is None
        assert await store.get_task_state("t") == after

    run(body, tmp_path)


def test_the_retry_policy_counts_from_nothing_again() -> None:
    spent = {k: v for k, v in SPENT.items() if k in RETRY_KEYS}
    assert spent == SPENT  # every count the test sets is one a retry drops
    policy = RetryPolicy(RetryConfig(max_retries=1, backoff_initial=0.05, backoff_max=0.1))
    failed = WorkflowResult(WorkflowStatus.FAILED, message="boom", retryable=True)
    assert isinstance(policy.decide(failed, int(SPENT["failures"]) + 1), GiveUp)
    assert isinstance(policy.decide(failed, 1), Retry)  # the first failure after a retry


@pytest.mark.parametrize(
    ("status", "says"),
    [
        (TaskStatus.QUEUED, "has not ended (queued): nothing to retry"),
        (TaskStatus.RUNNING, "has not ended (running): nothing to retry"),
        (TaskStatus.IN_REVIEW, "has not ended (in_review): nothing to retry"),
        (TaskStatus.DONE, "is done (its work landed): nothing to retry"),
    ],
)
def test_a_task_that_has_not_ended_or_landed_is_not_retried(
    tmp_path: Path, status: TaskStatus, says: str
) -> None:
    async def body(store: FileStateStore) -> None:
        before = await ended(store, status)
        with pytest.raises(RequeueError, match=re.escape(says)):
            await request_retry(store, "t")
        assert await store.get_task_state("t") == before
        with pytest.raises(RecordNotFound):
            await request_retry(store, "nobody")

    run(body, tmp_path)


@dataclass
class Lending:
    """The merge queue's fetch of the remote's base, as ``resolve_round`` calls it."""

    fetched: list[str] = field(default_factory=list)

    async def follow_pull_base(self, remote: str) -> None:
        self.fetched.append(remote)


@dataclass
class Merges:
    lending: Lending = field(default_factory=Lending)


@dataclass
class Config:
    base_branch: str = "main"


@dataclass
class Few:
    """The part of ``Services`` a rebase uses: the store, the merge queue, the base."""

    store: FileStateStore
    merges: Merges = field(default_factory=Merges)
    config: Config = field(default_factory=Config)
    team: None = None


OPEN = {"number": 12, "head": "council/t", "head_sha": "abc", "state": "open", "round": 1}


@pytest.mark.parametrize("status", [TaskStatus.IN_REVIEW, TaskStatus.CONFLICT])
def test_a_rebase_sends_an_open_pull_request_through_a_resolve_round(
    tmp_path: Path, status: TaskStatus
) -> None:
    async def body(store: FileStateStore) -> None:
        seen: list[Event] = []
        store.subscribe(seen.append)
        rounds = 1 if status == TaskStatus.CONFLICT else 0
        meta = {**KEPT, PULL: {**OPEN, "waiting": "#12: 1 more approving review(s)"}}
        await ended(store, status, metadata={**meta, "resolve_rounds": rounds})
        few = Few(store)
        after = await request_rebase(cast(Services, few), "t")
        assert few.merges.lending.fetched == ["origin"]  # the remote's base fetched first
        assert after.status == TaskStatus.QUEUED
        assert (after.finished_at, after.current_phase) == (None, None)
        assert after.error == "a rebase of pull request #12 was asked for: building again on main"
        assert "worktree_session" not in after.metadata  # a fresh worktree from the base
        assert after.metadata["resolve_rounds"] == rounds + 1
        assert after.metadata[PULL] == {**OPEN, "round": 2, "waiting": "", "human": False}
        [event] = [e for e in seen if e.type == EventType.MERGE_RESOLVE_ROUND]
        assert (event.data["task_id"], event.data["kept_branch"]) == ("t", "council/t")

    run(body, tmp_path)


@pytest.mark.parametrize(
    ("status", "pull", "says"),
    [
        (TaskStatus.FAILED, None, "it ended failed without a pull request"),
        (TaskStatus.RUNNING, None, "it has no pull request yet (running)"),
        (TaskStatus.FAILED, {**OPEN, "state": "closed"}, "its pull request #12 is closed"),
        (TaskStatus.RUNNING, OPEN, "its pull request #12 is being worked on (running)"),
        (TaskStatus.CANCELLED, {**OPEN, "state": "closed"}, "#12 is closed: nothing to rebase"),
    ],
)
def test_a_task_without_an_open_pull_request_is_not_rebased(
    tmp_path: Path, status: TaskStatus, pull: dict[str, Any] | None, says: str
) -> None:
    async def body(store: FileStateStore) -> None:
        meta = {**KEPT, **({PULL: pull} if pull is not None else {})}
        before = await ended(store, status, metadata=meta)
        few = Few(store)
        with pytest.raises(RequeueError, match=re.escape(says)):
            await request_rebase(cast(Services, few), "t")
        assert few.merges.lending.fetched == []
        assert await store.get_task_state("t") == before

    run(body, tmp_path)
