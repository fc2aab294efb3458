"""The merge queue under ``LockManager.merge_hold``: the lock's taking (its record's write)
rides in the train's first attempt call, the crash point ``merge.locked`` in that call after
the write, and, the train settled by that attempt, its letting go (its record's delete) too:
one worker-thread call a landing, where ``merge_lock`` takes three."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from orchestrator import filelock
from orchestrator.locks.manager import LockManager
from orchestrator.merge import attempts
from orchestrator.merge.queue import MergeLockFactory, MergeQueue, MergeStatus
from orchestrator.state import FileStateStore
from tests.support.hops import count_hops
from tests.support.merge_repo import commit_on, git, init_repo, tip


async def land_counted(
    repo: Path, monkeypatch: pytest.MonkeyPatch, *, hold: bool
) -> tuple[int, MergeStatus]:
    """Land one branch (its lock's record written once before, as in a run); the worker-thread
    calls of the landing alone."""
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    async with FileStateStore.for_repo(repo) as store:
        locks = LockManager(repo, store=store)
        await locks.acquire_merge_lock("warm-up")
        await locks.release_merge_lock("warm-up")
        factory: MergeLockFactory = locks.merge_hold if hold else locks.merge_lock
        queue = MergeQueue(repo, "main", merge_lock=factory)
        with monkeypatch.context() as patch:
            hopped = count_hops(patch)
            result = await queue.merge("s1", "council/t1/1", task_id="t1")
        assert await store.get_record("merge-lock", "merge") is None  # deleted at the end
        await locks.aclose()
    return len(hopped), result.status


async def test_a_landing_under_the_hold_takes_and_lets_go_of_the_lock_in_its_attempts_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    held_hops, held_status = await land_counted(
        init_repo(tmp_path / "held", checked_out=False), monkeypatch, hold=True
    )
    plain_hops, plain_status = await land_counted(
        init_repo(tmp_path / "plain", checked_out=False), monkeypatch, hold=False
    )
    assert held_status is plain_status is MergeStatus.MERGED
    assert (held_hops, plain_hops) == (1, 3)


async def test_merge_locked_is_passed_in_the_attempts_call_with_the_lock_taken(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    start = tip(repo)
    commit_on(repo, "council/t1/1", {"a.txt": "a\n"})
    lock_file = repo / ".council" / "locks" / "merge.lock"
    seen: list[tuple[str, bool, bool, str]] = []

    def point(name: str, *args: object) -> None:
        probe = filelock.try_acquire(lock_file)
        if probe is not None:
            probe.release()
        worker = threading.current_thread() is not threading.main_thread()
        seen.append((name, worker, probe is None, tip(repo)))

    monkeypatch.setattr(attempts, "crash_point", point)
    async with FileStateStore.for_repo(repo) as store:
        locks = LockManager(repo, store=store)
        queue = MergeQueue(repo, "main", merge_lock=locks.merge_hold, store=store)
        result = await queue.merge("s1", "council/t1/1", task_id="t1")
        await locks.aclose()
    assert result.status is MergeStatus.MERGED
    # In a worker thread, the OS lock held, the base not moved yet.
    assert seen == [("merge.locked", True, True, start)]
    assert git(repo, "log", "-1", "--format=%s", "main").startswith("Merge")
