"""The invariant checker (``tests/support/invariants.py``) must see each broken promise: a
checker that never complains would let every crash test pass. One real run (the real workflow,
the scripted CLI) leaves a repository where everything holds; each test then breaks one
invariant for real (git, the store, a process, a lock) and expects the checker to name it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from orchestrator import filelock
from orchestrator.council import Council
from orchestrator.locks.manager import LockManager
from orchestrator.models import TaskStatus
from orchestrator.state import FileStateStore
from tests.support import invariants
from tests.support.scheduler_helpers import new_repo, run_config
from tests.support.worktree_helpers import commit_on_main, git


@pytest.fixture(scope="module")
def finished(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A repository whose one task was run and merged by a real run."""
    repo = new_repo(tmp_path_factory.mktemp("finished"))
    scripted = {"type": "scripted", "options": {"delay": 0}}
    task = {
        "id": "one",
        "prompt": "Write one.txt.",
        "metadata": {"phase_instructions": {"build": "WRITE one.txt one"}},
    }
    config = run_config(repo, [task], adapters={"alpha": scripted})

    async def run() -> None:
        async with Council(config) as council:
            report = await council.run()
        assert report.totals.done == 1

    anyio.run(run)
    return repo


@pytest.fixture
def repo(finished: Path, tmp_path: Path) -> Path:
    """A copy of the finished run's repository, for a test to break."""
    copy = tmp_path / "repo"
    shutil.copytree(finished, copy, symlinks=True)
    return copy


@pytest.fixture
def sleeper() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        process.kill()
        process.wait()


def test_a_finished_run_keeps_every_invariant(repo: Path) -> None:
    before = invariants.snapshot(repo)
    assert before["tasks/one"] > 1
    assert invariants.problems(repo, before=before, all_done=True, root=repo.parent) == []


def test_a_task_merged_twice(repo: Path) -> None:
    git(repo, "commit", "-q", "--allow-empty", "-m", "again\n\nCouncil-Task: one")
    assert invariants.problems(repo) == ["task one merged 2 times"]


def test_a_conflict_marker_on_the_base(repo: Path) -> None:
    commit_on_main(repo, {"bad.txt": "<<<<<<< ours\na\n=======\nb\n>>>>>>> theirs\n"})
    found = invariants.problems(repo)
    assert [p.split(": ", 1)[0] for p in found] == ["conflict marker on main"] * 2


def test_a_commit_on_no_branch_is_lost_work_but_an_unlanded_merge_is_not(repo: Path) -> None:
    tree = git(repo, "rev-parse", "main^{tree}")
    lost = git(repo, "commit-tree", tree, "-p", "main", "-m", "council: one build (round 1)")
    git(repo, "commit-tree", tree, "-p", "main", "-m", "Merge x\n\nCouncil-Task: one")
    assert invariants.problems(repo) == [
        f"commit {lost[:12]} ('council: one build (round 1)') is on no branch or council ref"
    ]
    git(repo, "update-ref", "refs/council/rescue/kept", lost)
    assert invariants.problems(repo) == []


def test_a_stranded_task_and_one_that_is_not_done(repo: Path) -> None:
    async def strand() -> None:
        async with FileStateStore.for_repo(repo) as store:
            await store.update_task_state("one", {"status": TaskStatus.QUEUED})

    anyio.run(strand)
    assert invariants.problems(repo) == ["task one is queued in a completed session"]
    assert invariants.problems(repo, all_done=True) == ["task one is queued, not done: None"]


def test_a_record_version_that_went_back(repo: Path) -> None:
    before = invariants.snapshot(repo)
    later = {**before, "tasks/one": before["tasks/one"] + 5}
    assert invariants.problems(repo, before=later) == [
        f"tasks/one went back from version {later['tasks/one']} to {before['tasks/one']}"
    ]


def test_a_process_left_in_the_councils_directories(
    repo: Path, sleeper: list[subprocess.Popen[bytes]]
) -> None:
    inside = repo / ".council" / "logs"
    sleeper.append(
        subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], cwd=inside)
    )
    (found,) = invariants.problems(repo)
    assert found.startswith(f"pid {sleeper[0].pid} still runs in {inside.resolve()}")


def test_a_held_lock_and_a_git_lock_left_behind(repo: Path) -> None:
    merge_lock = repo / ".council" / "locks" / "merge.lock"
    held = filelock.try_acquire(merge_lock)
    assert held is not None
    try:
        found = invariants.problems(repo, lock_wait=0.1)
    finally:
        held.release()
    assert "lock .council/locks/merge.lock is held by a process still running" in found
    assert any(p.startswith("the next run would be blocked: LockTimeout") for p in found)
    (repo / ".git" / "refs" / "heads" / "main.lock").write_text("")
    assert invariants.problems(repo) == [
        f"git lock left: {(repo / '.git' / 'refs' / 'heads' / 'main.lock').resolve()}"
    ]
    assert os.path.exists(repo / ".git" / "refs" / "heads" / "main.lock")


def test_a_worktree_left_for_a_done_task(repo: Path) -> None:
    path = repo / ".council" / "worktrees" / "one.abc123"
    reason = "council session=one.abc123 cli=alpha task=one"
    git(repo, "worktree", "add", "-q", "--lock", "--reason", reason, str(path), "-b", "c/one/9")
    assert invariants.problems(repo) == [f"worktree {path} of done task one is left"]
    assert invariants.problems(repo, settled=False) == []


def test_a_file_lock_a_live_process_still_holds(repo: Path) -> None:
    async def hold_and_check() -> list[str]:
        async with FileStateStore.for_repo(repo) as store, LockManager(repo, store=store) as locks:
            await locks.acquire_file_lock("holder.1", "one.txt")
            return await anyio.to_thread.run_sync(lambda: invariants.problems(repo, lock_wait=0.1))

    found = anyio.run(hold_and_check)
    assert [p.split(" ")[0] for p in found] == ["lock", "the"]
    assert found[0].startswith("lock .council/locks/files/") and "held" in found[0]
    assert found[1].startswith("the next run would be blocked: LockTimeout")
