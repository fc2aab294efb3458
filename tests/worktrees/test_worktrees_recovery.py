"""Reconcile: vanished directories, stale and live index locks, dead sessions, orphans."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import NAMESPACE, WorktreeManager
from orchestrator.worktrees.models import SessionWorktree, WorktreeSettings
from tests.support.worktree_helpers import ENV, branches, git, make_repo, registered_paths, write

OLD = time.time() - 3600


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


@pytest.fixture
async def store(repo: Path) -> AsyncIterator[FileStateStore]:
    async with FileStateStore.for_repo(repo) as opened:
        yield opened


@pytest.fixture
def manager(repo: Path, store: FileStateStore) -> WorktreeManager:
    return WorktreeManager(repo, store=store)


def admin_dir(session: SessionWorktree) -> Path:
    text = (session.path / ".git").read_text().removeprefix("gitdir: ").strip()
    return Path(text)


@pytest.fixture
def spawned() -> Iterator[list[subprocess.Popen[bytes]]]:
    """Processes a test starts; each is killed with its whole group afterwards."""
    children: list[subprocess.Popen[bytes]] = []
    yield children
    for child in children:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(child.pid, signal.SIGKILL)
        child.wait()
        if child.stdout is not None:
            child.stdout.close()


def wait_for(predicate: Callable[[], bool], timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        time.sleep(0.02)


async def test_directory_deleted_by_hand_is_pruned_and_recreated(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"feature.py": "done = True\n"})
    first = await manager.commit_in_worktree(session, "feature")
    write(session.path, {"more.py": "more = True\n"})
    second = await manager.commit_in_worktree(session, "more")
    shutil.rmtree(session.path)

    # A restarted orchestrator: a new manager that knows the session from the store only.
    restarted = WorktreeManager(repo, store=store)
    report = await restarted.reconcile(live_sessions={"s1"})
    assert report.pruned == [session.path] and report.missing == ["s1"]
    assert session.path not in registered_paths(repo)
    assert git(repo, "rev-parse", session.branch) == second.sha  # the branch kept everything

    again = await restarted.recreate_session_worktree("s1")
    assert again.path == session.path and again.branch == session.branch
    assert (again.path / "feature.py").read_text() == "done = True\n"
    assert git(again.path, "rev-parse", "HEAD") == second.sha
    assert first.sha in git(again.path, "log", "--format=%H")
    assert git(again.path, "status", "--porcelain") == ""
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {again.path}\n" in listed and "session=s1" in listed
    write(again.path, {"after.py": "x = 1\n"})
    assert (await restarted.commit_in_worktree("s1", "after the crash")).committed
    assert await restarted.recreate_session_worktree("s1") == again  # already there: unchanged
    assert (await restarted.reconcile(live_sessions={"s1"})).missing == []


async def test_recreate_from_the_rescue_ref_when_the_branch_is_gone(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.txt": "work\n"})
    done = await manager.commit_in_worktree(session, "work")
    shutil.rmtree(session.path)
    await manager.reconcile()
    git(repo, "update-ref", "refs/council/rescue/s1", done.sha or "")
    git(repo, "branch", "-q", "-D", session.branch)
    again = await manager.recreate_session_worktree(session)
    assert (again.path / "work.txt").read_text() == "work\n"
    assert git(repo, "rev-parse", session.branch) == done.sha


async def test_stale_index_locks_are_moved_aside(repo: Path, manager: WorktreeManager) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    locks = [admin_dir(session) / "index.lock", repo / ".git" / "index.lock"]
    for lock in locks:
        lock.write_text("left by a crashed git\n")
        os.utime(lock, (OLD, OLD))

    report = await manager.reconcile()

    assert sorted(moved.path for moved in report.moved_locks) == sorted(locks)
    for moved in report.moved_locks:
        assert not moved.path.exists()
        assert moved.moved_to.name.startswith("index.lock.stale-")
        assert moved.moved_to.read_text() == "left by a crashed git\n"  # kept, not deleted
    write(session.path, {"work.txt": "work\n"})
    assert (await manager.commit_in_worktree(session, "works again")).committed


async def test_a_lock_created_seconds_ago_is_left_alone(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    lock = admin_dir(session) / "index.lock"
    lock.write_text("")
    report = await manager.reconcile()
    assert report.moved_locks == [] and lock.exists()
    assert any("only seconds old" in problem for problem in report.problems)


async def test_a_lock_a_live_process_holds_is_refused(
    repo: Path, manager: WorktreeManager, spawned: list[subprocess.Popen[bytes]]
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    lock = admin_dir(session) / "index.lock"
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys, time; f = open(sys.argv[1], 'w'); print('ready', flush=True); "
            "time.sleep(60)",
            str(lock),
        ],
        stdout=subprocess.PIPE,
        start_new_session=True,
    )
    spawned.append(holder)
    assert holder.stdout is not None and holder.stdout.readline() == b"ready\n"
    os.utime(lock, (OLD, OLD))

    with pytest.raises(WorkspaceError) as caught:
        await manager.reconcile()
    assert str(lock) in str(caught.value) and f"pid {holder.pid}" in str(caught.value)
    assert lock.exists()

    os.killpg(holder.pid, signal.SIGKILL)
    holder.wait()
    report = await manager.reconcile()
    assert [moved.path for moved in report.moved_locks] == [lock]


async def test_the_lock_of_a_running_git_command_is_refused(
    repo: Path, manager: WorktreeManager, spawned: list[subprocess.Popen[bytes]]
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"README.md": "edited by a human\n"})
    lock = admin_dir(session) / "index.lock"
    # A human's `git commit -a` waiting in its editor holds the index lock the whole time.
    editor = f"{sys.executable} -c 'import time; time.sleep(60)'"
    committing = subprocess.Popen(
        ["git", "-C", str(session.path), "commit", "-a"],
        env={**ENV, "GIT_EDITOR": editor},
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    spawned.append(committing)
    wait_for(lock.exists)
    os.utime(lock, (OLD, OLD))

    with pytest.raises(WorkspaceError) as caught:
        await manager.reconcile()
    assert str(lock) in str(caught.value) and f"pid {committing.pid}" in str(caught.value)
    assert lock.exists()


async def test_dead_sessions_are_cleaned_up_safely(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    live = await manager.create_session_worktree("s1", "claude", "t1")
    with_work = await manager.create_session_worktree("s2", "codex", "t2")
    idle = await manager.create_session_worktree("s3", "gemini", "t3")
    write(with_work.path, {"half-done.py": "x = 1\n"})
    write(live.path, {"in-progress.py": "y = 2\n"})

    report = await WorktreeManager(repo, store=store).reconcile(live_sessions={"s1"})

    by_session = {removed.session_id: removed for removed in report.removed}
    assert set(by_session) == {"s2", "s3"}
    assert by_session["s2"].rescue_ref == "refs/council/rescue/s2"
    assert git(repo, "show", "refs/council/rescue/s2:half-done.py") == "x = 1"
    assert "council/t2/1" in branches(repo)  # unmerged work keeps its branch
    assert by_session["s3"].branch_deleted and "council/t3/1" not in branches(repo)
    assert not with_work.path.exists() and not idle.path.exists()
    assert {r.key for r in await store.list_records(NAMESPACE)} == {"s1"}
    # The live session is untouched, uncommitted work and all.
    assert (live.path / "in-progress.py").exists() and live.path in registered_paths(repo)


async def test_dead_sessions_found_without_a_store(
    repo: Path, spawned: list[subprocess.Popen[bytes]]
) -> None:
    before_crash = WorktreeManager(repo)
    gone = await before_crash.create_session_worktree("s1", "claude", "t1")
    busy = await before_crash.create_session_worktree("s2", "claude", "t2")
    write(gone.path, {"work.txt": "work\n"})
    # The crashed orchestrator's CLI still runs in s2 (it had its own process group).
    spawned.append(
        subprocess.Popen(
            [sys.executable, "-c", "import time; time.sleep(60)"],
            cwd=busy.path,
            start_new_session=True,
        )
    )

    report = await WorktreeManager(repo).reconcile(live_sessions=[])

    assert [removed.session_id for removed in report.removed] == ["s1"]
    assert git(repo, "show", "refs/council/rescue/s1:work.txt") == "work"
    assert report.busy == ["s2"] and busy.path.exists()


@pytest.mark.parametrize("touched", [False, True])
async def test_a_crash_between_add_and_checkout_is_cleaned_up(repo: Path, touched: bool) -> None:
    manager = WorktreeManager(repo)
    await manager.layout()
    path = repo / ".council" / "worktrees" / "s9"
    git(repo, "branch", "council/t9/1", "main")
    git(
        repo, "worktree", "add", "-q", "--no-checkout", "--lock",
        "--reason", "council session=s9 cli=claude task=t9", str(path), "council/t9/1",
    )  # fmt: skip
    if touched:  # someone wrote into the half-made worktree before it was noticed
        write(path, {"README.md": "written by hand\n"})

    report = await manager.reconcile(live_sessions=[])

    [removed] = report.removed
    assert not path.exists()
    if touched:
        assert removed.rescue_commit is not None and not removed.branch_deleted
        assert git(repo, "show", "refs/council/rescue/s9:README.md") == "written by hand"
        # Files git never got to check out are not "deleted" by the rescue.
        assert git(repo, "show", "refs/council/rescue/s9:src/app.py") == "print('app')"
    else:
        # A never-checked-out worktree holds no work: nothing to rescue, nothing kept.
        assert removed.rescue_commit is None and removed.merged and removed.branch_deleted
        assert branches(repo) == set()


async def test_orphan_directories_are_reported_not_deleted(
    repo: Path, manager: WorktreeManager
) -> None:
    await manager.layout()
    stray = repo / ".council" / "worktrees" / "stray"
    write(stray, {"someone's file.txt": "keep me\n"})
    report = await manager.reconcile()
    assert report.orphans == [stray.resolve()]
    assert (stray / "someone's file.txt").read_text() == "keep me\n"


async def test_a_git_process_in_the_checkout_counts_as_a_holder(
    tmp_path: Path, repo: Path, manager: WorktreeManager, spawned: list[subprocess.Popen[bytes]]
) -> None:
    # Git closes the lock file while it waits (for an editor, say): a git process working in
    # the checkout holds the lock even without an open handle. A stand-in binary named `git`
    # that only sleeps shows the check does not rely on the handle.
    session = await manager.create_session_worktree("s1", "claude", "t1")
    lock = admin_dir(session) / "index.lock"
    lock.write_text("")
    os.utime(lock, (OLD, OLD))
    fake = tmp_path / "bin" / "git"
    fake.parent.mkdir()
    shutil.copy(shutil.which("sleep") or "/bin/sleep", fake)
    waiting = subprocess.Popen([str(fake), "60"], cwd=session.path / "src", start_new_session=True)
    spawned.append(waiting)
    # Its working directory is set before the exec, so wait for its command line as well:
    # until the exec, the child is still this interpreter, not `git` (a loaded machine
    # showed that window).
    wait_for(
        lambda: (
            os.readlink(f"/proc/{waiting.pid}/cwd") == str(session.path / "src")
            and Path(f"/proc/{waiting.pid}/cmdline").read_bytes().split(b"\0")[0] == bytes(fake)
        )
    )

    with pytest.raises(WorkspaceError, match=f"pid {waiting.pid} .* is git running in"):
        await manager.reconcile()
    assert lock.exists()


async def test_recreate_takes_a_pooled_worktree_and_keeps_the_record_on_failure(
    repo: Path, store: FileStateStore
) -> None:
    pooling = WorktreeManager(repo, store=store, settings=WorktreeSettings(pool_size=1))
    session = await pooling.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.py": "w = 1\n"})
    done = await pooling.commit_in_worktree(session, "work")
    spare = await pooling.create_session_worktree("s2", "claude", "t2")
    assert (await pooling.remove_session_worktree(spare)).pooled
    shutil.rmtree(session.path)
    await pooling.reconcile(live_sessions={"s1"})

    failing = WorktreeManager(
        repo,
        store=store,
        settings=WorktreeSettings(pool_size=1, setup=[[sys.executable, "-c", "exit(2)"]]),
    )
    with pytest.raises(WorkspaceError, match="exit code 2"):
        await failing.recreate_session_worktree("s1")
    assert await store.get_record(NAMESPACE, "s1") is not None  # can be tried again
    assert not session.path.exists() and session.path not in registered_paths(repo)
    assert git(repo, "rev-parse", session.branch) == done.sha

    again = await pooling.recreate_session_worktree("s1")
    assert git(again.path, "rev-parse", "HEAD") == done.sha
    assert (again.path / "work.py").read_text() == "w = 1\n"
    assert git(again.path, "status", "--porcelain", "--ignored") == ""


def cut_short(session: SessionWorktree) -> None:
    """The worktree as a kill between `worktree add --no-checkout` and its checkout leaves it:
    registered, its .git file there, no index, no files, not marked ready."""
    admin = Path(git(session.path, "rev-parse", "--absolute-git-dir"))
    for entry in session.path.iterdir():
        if entry.name != ".git":
            shutil.rmtree(entry) if entry.is_dir() else entry.unlink()
    (admin / "index").unlink()
    (admin / "council-ready").unlink(missing_ok=True)


async def test_a_worktree_cut_short_is_finished_on_reuse_and_never_commits_deletions(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "cli", "t1")
    cut_short(session)

    reused = await manager.recreate_session_worktree(session)  # what a resumed attempt does

    assert (reused.path / "README.md").read_text() == "hello\n"
    assert git(reused.path, "status", "--porcelain") == ""
    write(reused.path, {"work.txt": "the CLI's work\n"})
    done = await manager.commit_in_worktree(reused, "council: t1 build")
    assert done.files == ["work.txt"]  # not every file of the base as deleted


async def test_a_commit_in_a_worktree_cut_short_never_deletes_what_it_never_checked_out(
    repo: Path, manager: WorktreeManager
) -> None:
    # The commit itself refuses to take a missing index for deletions, whoever calls it.
    session = await manager.create_session_worktree("s1", "cli", "t1")
    cut_short(session)
    write(session.path, {"work.txt": "work\n"})
    done = await manager.commit_in_worktree(session, "council: t1 build")
    assert done.files == ["work.txt"]
    assert git(repo, "show", f"{session.branch}:src/app.py") == "print('app')"


async def test_a_worktree_whose_admin_dir_was_deleted_is_recovered_by_reconcile(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    # A CLI deleted `.git/worktrees/<name>` of two sessions beside it: their edits are loose
    # files git no longer knows. Reconcile gives both back to git on their branches first:
    # the dead one's are then committed and saved, the live one's stay its changes.
    dead = await manager.create_session_worktree("s1", "claude", "t1")
    live = await manager.create_session_worktree("s2", "codex", "t2")
    write(dead.path, {"half-done.py": "x = 1\n", "README.md": "edited\n"})
    write(live.path, {"in-progress.py": "y = 2\n"})
    shutil.rmtree(admin_dir(dead))
    shutil.rmtree(admin_dir(live))

    report = await WorktreeManager(repo, store=store).reconcile(live_sessions={"s2"})

    assert len(report.recovered) == 2 and report.problems == [] and report.orphans == []
    assert report.recovered[0].startswith(f"session s1 ({dead.path}): its admin directory")
    (removed,) = report.removed
    assert removed.session_id == "s1" and removed.rescue_commit is not None
    assert git(repo, "show", "refs/council/rescue/s1:half-done.py") == "x = 1"
    assert git(repo, "show", "refs/council/rescue/s1:README.md") == "edited"
    assert not dead.path.exists()
    status = git(live.path, "status", "--porcelain", "--untracked-files=all")
    assert status == "?? in-progress.py"
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {live.path}\n" in listed and "locked council session=s2" in listed
    assert (await manager.commit_in_worktree(live, "work")).committed
    assert git(repo, "show", f"{live.branch}:in-progress.py") == "y = 2"


async def test_a_kept_worktree_cut_off_from_git_is_recovered_before_its_next_attempt(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.txt": "committed\n"})
    done = await manager.commit_in_worktree(session, "work")
    write(session.path, {"loose.txt": "not committed yet\n"})
    shutil.rmtree(admin_dir(session))

    again = await WorktreeManager(repo, store=store).recreate_session_worktree("s1")

    assert again == session  # the same checkout, not a new one: nothing was checked out
    assert (session.path / "loose.txt").read_text() == "not committed yet\n"
    assert git(session.path, "rev-parse", "HEAD") == done.sha
    assert git(session.path, "status", "--porcelain", "--untracked-files=all") == "?? loose.txt"
