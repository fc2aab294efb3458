"""The merge queue and git's own lock files: a leftover ``<ref>.lock`` (or ``HEAD.lock``,
``packed-refs.lock``, the checkout's ``index.lock``) is found before anything is touched and
named with its age and whether a git process holds it; a stale one fails the merge at once, a
held one is waited for a bounded time; the user's checkout of the base is never left changed by
a merge that did not complete (a lock that appears mid-way is rolled back exactly), and a
fast-forward that was cut short earlier is finished rather than blamed on the user."""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import BaseLocked, MergeContention
from orchestrator.merge import local as merge_module
from orchestrator.merge.queue import MergeQueue, MergeStatus
from tests.support.fault_helpers import TASK, FaultRun
from tests.support.merge_repo import ENV, commit_on, git, init_repo, tip
from tests.support.timing import patience

HOUR = 3600.0
JSON_RESULT = {"output": "jsonl", "result_key": "result", "result_when": {"type": "result"}}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    """``main`` checked out in the main checkout, as a user would have it."""
    return init_repo(tmp_path / "repo", checked_out=True)


def leave_lock(path: Path, age: float) -> Path:
    """A lock file as a crashed git leaves it, ``age`` seconds old."""
    path.write_text("")
    then = time.time() - age
    os.utime(path, (then, then))
    return path


def snapshot(checkout: Path) -> tuple[str, str, str, dict[str, bytes]]:
    """HEAD, the index's entries, ``git status`` and every file's bytes: all a user sees
    (``.council/``, the orchestrator's own and excluded from git, aside)."""
    files = {
        str(p.relative_to(checkout)): p.read_bytes()
        for p in sorted(checkout.rglob("*"))
        if p.is_file() and not {".git", ".council"} & set(p.relative_to(checkout).parts)
    }
    return (
        git(checkout, "rev-parse", "HEAD"),
        git(checkout, "ls-files", "--stage"),
        git(checkout, "status", "--porcelain", "--untracked-files=all"),
        files,
    )


@pytest.mark.parametrize(
    "lock", ["refs/heads/main.lock", "HEAD.lock", "packed-refs.lock", "index.lock"]
)
async def test_stale_lock_fails_at_once_naming_it_and_the_checkout_is_untouched(
    repo: Path, lock: str
) -> None:
    commit_on(repo, "council/t1/1", {"a.txt": "the task's file\n"})
    path = leave_lock(repo / ".git" / lock, 2 * HOUR)
    before = snapshot(repo)
    base = tip(repo)
    with pytest.raises(BaseLocked) as caught:
        # Stale, so never waited for: a wait of lock_wait would hang to pytest's timeout.
        await MergeQueue(repo, "main", lock_wait=3600).merge("s1", "council/t1/1", task_id="t1")

    message = str(caught.value)
    assert str(path) in message and "2 h 0 min old" in message
    assert "no git process holds it" in message and "nothing was changed" in message
    assert isinstance(caught.value, MergeContention)  # callers that handle contention still do
    assert snapshot(repo) == before and tip(repo) == base
    assert path.exists()  # the user's repository: never removed behind their back


async def test_stale_head_lock_of_a_linked_checkout_is_found(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", str(linked), "main")
    commit_on(repo, "b", {"a.txt": "a\n"})
    admin = Path(git(linked, "rev-parse", "--path-format=absolute", "--git-dir"))
    path = leave_lock(admin / "HEAD.lock", HOUR)
    before = snapshot(linked)

    with pytest.raises(BaseLocked, match=re.escape(str(path))):
        await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert snapshot(linked) == before


async def test_stale_ref_lock_without_a_checkout_is_named(tmp_path: Path) -> None:
    repo = init_repo(tmp_path / "repo", checked_out=False)
    commit_on(repo, "b", {"a.txt": "a\n"})
    path = leave_lock(repo / ".git" / "refs" / "heads" / "main.lock", 90.0)
    base = tip(repo)

    with pytest.raises(BaseLocked) as caught:
        await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert str(path) in str(caught.value) and "1 min 30 s old" in str(caught.value)
    assert tip(repo) == base


@pytest.fixture
def git_running_in(repo: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live git process working in the repository (it waits on its stdin)."""
    process = subprocess.Popen(
        ["git", "hash-object", "--stdin"],
        cwd=repo,
        env=ENV,
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.kill()
        process.wait()
        assert process.stdin is not None
        process.stdin.close()


async def test_lock_a_live_git_holds_is_waited_for_then_named_with_its_holder(
    repo: Path, git_running_in: subprocess.Popen[bytes]
) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    path = leave_lock(repo / ".git" / "refs" / "heads" / "main.lock", HOUR)
    before = snapshot(repo)
    started = time.monotonic()

    with pytest.raises(BaseLocked) as caught:
        await MergeQueue(repo, "main", lock_wait=0.6).merge("s1", "b", task_id="t1")

    waited = time.monotonic() - started
    assert 0.6 <= waited < 8
    message = str(caught.value)
    assert str(path) in message and f"pid {git_running_in.pid}" in message
    assert "git hash-object" in message and "waited" in message
    assert snapshot(repo) == before


async def test_lock_released_while_waiting_lets_the_merge_land(
    repo: Path, git_running_in: subprocess.Popen[bytes]
) -> None:
    commit_on(repo, "b", {"a.txt": "a\n"})
    path = leave_lock(repo / ".git" / "HEAD.lock", 0.0)

    def git_finishes() -> None:
        time.sleep(0.5)
        path.unlink()
        git_running_in.kill()

    finisher = threading.Thread(target=git_finishes)
    finisher.start()
    try:
        result = await MergeQueue(repo, "main", lock_wait=20).merge("s1", "b", task_id="t1")
    finally:
        finisher.join()

    assert result.status is MergeStatus.MERGED
    assert (repo / "a.txt").read_text() == "a\n"
    assert git(repo, "status", "--porcelain") == ""


async def test_lock_appearing_after_the_check_is_rolled_back_exactly(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The lock is created after the queue looked (as by a git starting that instant): git's
    fast-forward then updates the index and files and fails on the ref. The checkout is put
    back exactly, the base did not move, and the next attempt names the lock."""
    commit_on(repo, "b", {"a.txt": "a\n", "README.md": "changed by the task\n"})
    (repo / "notes.txt").write_text("the user's untracked notes\n")
    before = snapshot(repo)
    base = tip(repo)
    lock = repo / ".git" / "refs" / "heads" / "main.lock"
    real = merge_module.held_git_locks
    looks: list[int] = []

    def lock_appears_after_the_first_look(*args: object, **kwargs: object) -> object:
        found = real(*args, **kwargs)  # type: ignore[arg-type]
        if not looks:
            leave_lock(lock, 3 * HOUR)  # too late for this look: it already ran
        looks.append(1)
        return found

    monkeypatch.setattr(merge_module, "held_git_locks", lock_appears_after_the_first_look)

    with pytest.raises(BaseLocked, match=re.escape(str(lock))):
        await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert len(looks) >= 2
    assert snapshot(repo) == before and tip(repo) == base
    assert git(repo, "status", "--porcelain") == "?? notes.txt"


async def test_fast_forward_cut_short_earlier_is_finished_not_blamed_on_the_user(
    repo: Path,
) -> None:
    """What the unfixed queue (or a git killed between writing the index and the ref) left:
    the merge's tree staged and checked out, the ref not moved. That is not the user's work:
    the merge lands and the checkout ends clean, with the same files."""
    commit_on(repo, "b", {"a.txt": "a\n"})
    merged = git(repo, "merge-tree", "--write-tree", "main", "b")
    git(repo, "read-tree", "-m", "-u", "HEAD", merged)
    assert git(repo, "status", "--porcelain") == "A  a.txt"

    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.MERGED, result.message
    assert git(repo, "rev-parse", "HEAD") == tip(repo) == result.merge_commit
    assert git(repo, "status", "--porcelain") == ""
    assert (repo / "a.txt").read_text() == "a\n"


async def test_users_own_staged_change_still_waits(repo: Path) -> None:
    """Only a checkout holding exactly the merge's tree is taken for a cut-short fast-forward;
    the user's own staged work (even part of the same change) keeps the merge waiting."""
    commit_on(repo, "b", {"a.txt": "a\n", "b.txt": "b\n"})
    (repo / "a.txt").write_text("a\n")
    git(repo, "add", "a.txt")
    before = snapshot(repo)

    result = await MergeQueue(repo, "main").merge("s1", "b", task_id="t1")

    assert result.status is MergeStatus.WAITING_FOR_CHECKOUT
    assert "uncommitted changes" in result.message and snapshot(repo) == before


async def test_a_run_with_a_stale_base_lock_ends_naming_it_and_the_checkout_stays(
    tmp_path: Path,
) -> None:
    """The whole run: the user's checkout holds ``main``, a crashed git left ``main.lock``.
    The run ends (it used to wait forever, blaming the user's "uncommitted changes" that its
    own half-done fast-forward had staged), the task fails naming the lock, its age and that
    nobody holds it, the CLI ran once, the branch keeps the work and the checkout is as it was.
    """
    run = FaultRun(tmp_path, "env_test.py", output=JSON_RESULT)
    run.retry = {"max_retries": 1, "backoff_initial": 0.05, "backoff_max": 0.1}
    run.write_config()
    lock = leave_lock(run.repo / ".git" / "refs" / "heads" / "main.lock", HOUR)
    before = snapshot(run.repo)

    with anyio.fail_after(patience(60)):
        report = await run.run_here()

    task = next(t for t in report["tasks"] if t["task_id"] == TASK)
    assert task["status"] == "failed"
    assert str(lock) in task["error"] and "1 h 0 min old" in task["error"]
    assert "no git process holds it" in task["error"]
    assert snapshot(run.repo) == before
    assert len(run.logs()) == 1  # the retry merged again; it did not run the CLI again
    assert run.branch_has(task["branch"], "work.txt") and not run.on_main("work.txt")
    assert lock.exists()
