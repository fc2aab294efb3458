"""Session worktrees: creation, commits, stats and removal under the safety rules."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from orchestrator.errors import InvalidIdError, WorkspaceError, WorktreeBusy
from orchestrator.state import FileStateStore
from orchestrator.worktrees.manager import NAMESPACE, WorktreeManager
from orchestrator.worktrees.models import WorktreeSettings
from tests.support.git_trace import git_processes, started_here, traced
from tests.support.hops import count_hops
from tests.support.worktree_helpers import (
    branches,
    commit_on_main,
    git,
    git_ok,
    make_repo,
    registered_paths,
    write,
)


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


# --- creation ------------------------------------------------------------------------------------


async def test_a_checkout_and_its_index_taken_in_are_one_worker_thread_call(
    manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.worktrees import ops

    hopped = count_hops(monkeypatch)
    session = await manager.create_session_worktree("s1", "claude", "fix-login")
    assert ops._adopt_index not in hopped  # rode with the checkout (``worktree add``)
    assert git(session.path, "status", "--porcelain") == ""  # checked out, its index git's
    admin = Path(git(session.path, "rev-parse", "--absolute-git-dir"))
    assert (admin / "index").exists()


async def test_a_checkout_is_one_git_process_of_ours(
    repo: Path, manager: WorktreeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: the branch made on git's files without a process
    (``git.loose_refs``), then ``worktree add`` checks the files out itself (its own
    ``reset --hard``, a child of it), not a second process of the orchestrator's."""
    await manager.create_session_worktree("s0", "claude", "first")  # the repository looked at
    trace = traced(tmp_path, monkeypatch)
    session = await manager.create_session_worktree("s1", "claude", "fix-login")
    assert started_here(trace) == ["worktree"]
    assert git_processes(trace) == ["worktree", "symbolic-ref", "reset"]
    assert git(repo, "reflog", "show", "--format=%gs", session.branch) == ("council: new session")
    assert git(session.path, "status", "--porcelain", "--ignored") == ""
    assert (session.path / "README.md").exists()


async def test_create_session_worktree(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    tip = git(repo, "rev-parse", "main")
    session = await manager.create_session_worktree("s1", "claude", "fix-login")

    assert session.path == repo.resolve() / ".council" / "worktrees" / "s1"
    assert session.branch == "council/fix-login/1" and session.attempt == 1
    assert session.base_commit == tip
    assert (session.path / "src" / "app.py").read_text() == "print('app')\n"
    assert git(session.path, "symbolic-ref", "HEAD") == "refs/heads/council/fix-login/1"
    assert git(session.path, "status", "--porcelain") == ""

    listed = git(repo, "worktree", "list", "--porcelain")
    block = listed.split(f"worktree {session.path}\n", 1)[1].split("\n\n", 1)[0]
    assert "locked council session=s1 cli=claude task=fix-login" in block

    record = await store.get_record(NAMESPACE, "s1")
    assert record is not None
    assert record.data["branch"] == "council/fix-login/1"
    assert record.data["cli"] == "claude" and record.data["task_id"] == "fix-login"
    assert record.data["path"] == str(session.path)

    # .council/ is excluded exactly once, even with a second manager, and the user's checkout
    # shows nothing of it.
    await WorktreeManager(repo).create_session_worktree("s2", "codex", "fix-login")
    exclude = (repo / ".git" / "info" / "exclude").read_text().splitlines()
    assert exclude.count("/.council/") == 1
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""


async def test_forks_from_the_base_tip_read_fresh(repo: Path, manager: WorktreeManager) -> None:
    first = await manager.create_session_worktree("s1", "claude", "t1")
    new_tip = commit_on_main(repo, {"later.txt": "later\n"})
    second = await manager.create_session_worktree("s2", "claude", "t2")
    assert first.base_commit != new_tip and second.base_commit == new_tip
    assert (second.path / "later.txt").exists() and not (first.path / "later.txt").exists()


async def test_parallel_sessions_of_one_task_get_their_own_branches(
    repo: Path, manager: WorktreeManager
) -> None:
    made = []

    async def create(sid: str, cli: str) -> None:
        made.append(await manager.create_session_worktree(sid, cli, "refactor"))

    async with anyio.create_task_group() as group:
        for sid, cli in (("s1", "claude"), ("s2", "codex"), ("s3", "gemini")):
            group.start_soon(create, sid, cli)

    assert sorted(s.branch for s in made) == [
        "council/refactor/1",
        "council/refactor/2",
        "council/refactor/3",
    ]
    assert len({s.path for s in made}) == 3
    assert branches(repo) == {s.branch for s in made}
    assert registered_paths(repo) >= {s.path for s in made}
    # A later attempt continues the numbering.
    fourth = await manager.create_session_worktree("s4", "claude", "refactor")
    assert fourth.branch == "council/refactor/4"


async def test_unsafe_ids_are_refused(repo: Path, manager: WorktreeManager) -> None:
    with pytest.raises(InvalidIdError):
        await manager.create_session_worktree("../escape", "claude", "t1")
    with pytest.raises(InvalidIdError):
        await manager.create_session_worktree("s1", "claude", "task.lock")
    with pytest.raises(InvalidIdError):
        await manager.create_session_worktree("s1", "Claude Code", "t1")
    assert branches(repo) == set()
    assert not (repo / ".council" / "worktrees" / "s1").exists()


async def test_a_session_id_is_used_once(manager: WorktreeManager) -> None:
    await manager.create_session_worktree("s1", "claude", "t1")
    with pytest.raises(WorkspaceError, match="already"):
        await manager.create_session_worktree("s1", "claude", "t2")


@pytest.mark.parametrize("shape", ["linked-worktree", "separate-git-dir"])
async def test_repository_with_a_git_file(tmp_path: Path, shape: str) -> None:
    if shape == "linked-worktree":
        main = make_repo(tmp_path / "main")
        repo = tmp_path / "linked"
        git(main, "worktree", "add", "-q", "-b", "dev", str(repo), "main")
        common = main / ".git"
        base = "dev"
    else:
        repo = tmp_path / "repo"
        repo.mkdir()
        common = tmp_path / "gitdir"
        git(repo, "init", "-q", "-b", "main", "--separate-git-dir", str(common))
        write(repo, {"a.txt": "a\n"})
        git(repo, "add", "-A")
        git(repo, "commit", "-q", "-m", "initial")
        base = "main"
    assert (repo / ".git").is_file()

    manager = WorktreeManager(repo, base_branch=base)
    session = await manager.create_session_worktree("s1", "claude", "t1")
    assert session.base_commit == git(repo, "rev-parse", base)
    assert "/.council/" in (common / "info" / "exclude").read_text().splitlines()
    assert git(repo, "status", "--porcelain", "--untracked-files=all") == ""
    write(session.path, {"work.txt": "work\n"})
    assert (await manager.commit_in_worktree(session, "work")).committed
    removed = await manager.remove_session_worktree(session)
    assert removed.worktree_removed and not session.path.exists()


async def test_missing_base_branch_is_a_clear_error(repo: Path) -> None:
    manager = WorktreeManager(repo, base_branch="trunk")
    with pytest.raises(WorkspaceError, match="base branch 'trunk' does not exist"):
        await manager.create_session_worktree("s1", "claude", "t1")


async def test_not_a_checkout_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(WorkspaceError, match="not the top level of a git checkout"):
        await WorktreeManager(tmp_path).create_session_worktree("s1", "claude", "t1")


# --- commits and stats ---------------------------------------------------------------------------


async def test_commit_with_trailers_identity_and_stats(
    repo: Path, manager: WorktreeManager
) -> None:
    # A hook the user (or a CLI) planted never runs in the orchestrator's commits.
    hook = repo / ".git" / "hooks" / "pre-commit"
    hook.write_text(f"#!/bin/sh\ntouch {repo / 'hook-ran'}\nexit 1\n")
    hook.chmod(0o755)
    session = await manager.create_session_worktree("s1", "claude", "fix-login")
    write(session.path, {"src/new.py": "a = 1\nb = 2\n", "README.md": "hello\nworld\n"})
    (session.path / "src" / "app.py").unlink()

    result = await manager.commit_in_worktree(session, "Fix the login form")

    assert result.committed and result.sha == git(session.path, "rev-parse", "HEAD")
    assert result.head == result.sha
    assert sorted(result.files) == ["README.md", "src/app.py", "src/new.py"]
    assert result.files_changed == 3
    assert not (repo / "hook-ran").exists()
    shown = git(repo, "log", "-1", "--format=%an <%ae>|%cn <%ce>|%s", session.branch)
    assert shown == "CLI Council <council@localhost>|CLI Council <council@localhost>|" + (
        "Fix the login form"
    )
    trailers = git(repo, "log", "-1", "--format=%(trailers)", session.branch)
    assert "Council-Task: fix-login" in trailers and "Council-Session: s1" in trailers

    stats = await manager.get_session_stats("s1")
    assert stats.commits_ahead == 1
    assert (stats.files_changed, stats.insertions, stats.deletions) == (3, 3, 1)
    assert stats.merge_base == session.base_commit and stats.tip == result.sha
    assert not stats.dirty
    write(session.path, {"scratch.txt": "x\n"})
    assert (await manager.get_session_stats(session)).dirty


async def test_a_commit_starts_no_git_but_its_own(
    repo: Path, manager: WorktreeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted, not timed: committing a session's work is built by the orchestrator from the
    files (``own_commit``), never ``git commit``: in its own index (the one git wrote at the
    checkout, taken before anything ran there), the changed files listed (their known secrets
    masked before git reads them), ``add``, ``write-tree``, the changed files against the
    parent, ``commit-tree`` and the branch's move; none of them starts another git, and the commit
    reads as ``--trailer`` wrote it. A parent the index was not made for is read in first."""
    session = await manager.create_session_worktree("s1", "claude", "fix-login")
    write(session.path, {"src/new.py": "a = 1\n"})
    trace = traced(tmp_path, monkeypatch)

    result = await manager.commit_in_worktree(session, "council: fix-login build (round 1)")

    assert result.committed
    # The commit object written as commit-tree writes it (``git.loose_objects``), the branch
    # moved as update-ref moves it (``git.loose_refs``).
    steady = ["ls-files", "add", "write-tree", "diff-tree"]
    assert git_processes(trace) == steady
    trace.unlink()
    write(session.path, {"src/new.py": "a = 2\n"})
    again = await manager.commit_in_worktree(session, "again", parent=result.sha)
    assert again.committed and git_processes(trace) == steady  # its index kept from the first
    trace.unlink()
    write(session.path, {"src/new.py": "a = 3\n"})
    other = await manager.commit_in_worktree(session, "on the first", parent=result.sha)
    # The branch moved past the parent given by one new commit nothing else holds (as a CLI
    # committing by itself would): kept as history, found with two more processes.
    assert other.committed and git_processes(trace) == ["rev-list", "for-each-ref", *steady]
    assert git(repo, "rev-parse", f"{session.branch}~1") == again.sha
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    assert git(repo, "rev-parse", f"{session.branch}~2") == result.sha
    body = git(repo, "cat-file", "commit", result.sha or "").split("\n\n", 1)[1]
    assert body == (
        "council: fix-login build (round 1)\n\nCouncil-Task: fix-login\nCouncil-Session: s1"
    )


async def test_nothing_to_commit_is_a_result(repo: Path, manager: WorktreeManager) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    result = await manager.commit_in_worktree(session, "nothing")
    assert not result.committed and result.sha is None and result.files_changed == 0
    assert result.head == session.base_commit
    assert git(repo, "rev-parse", session.branch) == session.base_commit
    stats = await manager.get_session_stats(session)
    assert (stats.commits_ahead, stats.files_changed, stats.dirty) == (0, 0, False)


async def test_changes_git_cannot_stage_are_nothing_to_commit(
    tmp_path: Path, repo: Path, manager: WorktreeManager
) -> None:
    library = make_repo(tmp_path / "library", {"lib.py": "v = 1\n"})
    session = await manager.create_session_worktree("s1", "claude", "t1")
    git(session.path, "-c", "protocol.file.allow=always", "submodule", "add", "-q",
        str(library), "lib")  # fmt: skip
    first = await manager.commit_in_worktree(session, "add the submodule")
    assert first.committed and sorted(first.files) == [".gitmodules", "lib"]
    # An edit inside the submodule shows in the worktree's status, but `git add` there stages
    # nothing: the commit is refused, and that is a result, not an error.
    write(session.path / "lib", {"lib.py": "v = 2\n"})
    result = await manager.commit_in_worktree(session, "edit inside the submodule")
    assert not result.committed and result.sha is None
    assert git(repo, "rev-parse", session.branch) == first.sha


async def test_a_worktree_moved_off_its_branch_is_committed_on_the_sessions_branch(
    repo: Path, manager: WorktreeManager
) -> None:
    """The commit is the session's, on its branch, whatever HEAD the CLI left: the files are
    committed there, HEAD is put back on it, and the branch the CLI made is left alone."""
    session = await manager.create_session_worktree("s1", "claude", "t1")
    git(session.path, "checkout", "-q", "-b", "elsewhere")
    write(session.path, {"work.txt": "work\n"})
    result = await manager.commit_in_worktree(session, "work", parent=session.base_commit)
    assert result.committed and git(repo, "rev-parse", session.branch) == result.sha
    assert git(repo, "show", f"{session.branch}:work.txt") == "work"
    assert git(repo, "rev-parse", "elsewhere") == session.base_commit
    assert git(session.path, "symbolic-ref", "HEAD") == f"refs/heads/{session.branch}"
    assert git(session.path, "status", "--porcelain") == ""


# --- removal -------------------------------------------------------------------------------------


async def test_removal_rescues_uncommitted_and_untracked_work(
    repo: Path, store: FileStateStore, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"committed.txt": "kept\n"})
    committed = await manager.commit_in_worktree(session, "first part")
    write(session.path, {"README.md": "changed, not committed\n", "notes/untracked.md": "idea\n"})
    write(session.path, {"staged.txt": "staged\n"})
    git(session.path, "add", "staged.txt")

    result = await manager.remove_session_worktree("s1")

    assert result.rescue_commit is not None and result.tip == result.rescue_commit
    assert result.rescue_ref == "refs/council/rescue/s1" and not result.merged
    assert git(repo, "rev-parse", "refs/council/rescue/s1") == result.rescue_commit
    assert git(repo, "show", "refs/council/rescue/s1:notes/untracked.md") == "idea"
    assert git(repo, "show", "refs/council/rescue/s1:README.md") == "changed, not committed"
    assert git(repo, "show", "refs/council/rescue/s1:staged.txt") == "staged"
    assert git(repo, "log", "-1", "--format=%s", result.rescue_commit) == (
        "council: rescue uncommitted work"
    )
    assert git_ok(repo, "merge-base", "--is-ancestor", committed.sha or "", result.rescue_commit)
    # Not merged: the branch is kept, with the rescue on it, and the worktree is gone.
    assert result.worktree_removed and not result.branch_deleted
    assert git(repo, "rev-parse", "council/t1/1") == result.rescue_commit
    assert not session.path.exists() and session.path not in registered_paths(repo)
    assert await store.get_record(NAMESPACE, "s1") is None


async def test_a_merged_removal_looks_for_a_stranded_checkout_with_its_tip_in_one_hop(
    repo: Path, manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    from orchestrator.worktrees import stranded

    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"s1.txt": "work\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    hopped = count_hops(monkeypatch)
    gone = await manager.remove_session_worktree(session)
    assert gone.merged and gone.branch_deleted and gone.worktree_removed
    assert stranded.stranded_admin not in hopped  # looked at with the merged tip


async def test_a_merged_removal_is_one_worker_thread_call_with_its_record(
    repo: Path, manager: WorktreeManager, store: FileStateStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The look (stranded? merged tip?) rides in the metadata lock's call with the removal,
    and the worktree's record is deleted in that same call, after it: one hop in all."""
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"s1.txt": "work\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    assert await store.get_record(NAMESPACE, "s1") is not None
    hopped = count_hops(monkeypatch)
    gone = await manager.remove_session_worktree(session)
    assert gone.merged and gone.branch_deleted and gone.worktree_removed
    names = [getattr(fn, "__qualname__", repr(fn)) for fn in hopped]
    assert names == ["_try_locked_all"], names
    assert not session.path.exists() and session.path not in registered_paths(repo)
    assert "council/t1/1" not in branches(repo)
    assert await store.get_record(NAMESPACE, "s1") is None


async def test_a_merged_removal_deletes_its_branch_without_a_git_process(
    repo: Path, manager: WorktreeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Counted: ``worktree remove`` is the removal's one git process; the branch (and its
    reflog, and the directories left empty) deleted as ``update-ref -d`` deletes them
    (``git.loose_refs``), only while it is where the removal checked it."""
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"s1.txt": "work\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    trace = traced(tmp_path, monkeypatch)
    gone = await manager.remove_session_worktree(session)
    assert gone.merged and gone.branch_deleted and gone.worktree_removed
    assert started_here(trace) == ["worktree"]
    assert "council/t1/1" not in branches(repo)
    assert not (repo / ".git" / "refs" / "heads" / "council").exists()
    assert not (repo / ".git" / "logs" / "refs" / "heads" / "council").exists()
    assert git_ok(repo, "fsck", "--no-progress")


async def test_a_removal_the_metadata_lock_held_elsewhere_still_forgets_its_record(
    repo: Path, manager: WorktreeManager, store: FileStateStore
) -> None:
    """Another process holds the metadata lock at the first try: nothing is deleted in that
    call (the worktree is still there); the removal waits for the lock, then the record goes
    by itself."""
    from orchestrator import filelock

    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"s1.txt": "work\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    ws = await manager.layout()
    lock_path = ws.meta_lock_path
    held = await anyio.to_thread.run_sync(lambda: filelock.try_acquire(lock_path, root=ws.root))
    assert held is not None
    removed: list[bool] = []

    async def remove() -> None:
        removed.append((await manager.remove_session_worktree(session)).worktree_removed)

    async with anyio.create_task_group() as group:
        group.start_soon(remove)
        await anyio.sleep(0.05)
        assert not removed and await store.get_record(NAMESPACE, "s1") is not None
        assert session.path.exists()
        await anyio.to_thread.run_sync(held.release)
    assert removed == [True] and not session.path.exists()
    assert await store.get_record(NAMESPACE, "s1") is None


async def test_the_running_checkouts_are_looked_at_with_stats_on_the_loop(
    manager: WorktreeManager, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reconcile's look each tick: a stat a checkout, no hop and no file opened on the
    event loop; more than ``STATS_ON_LOOP`` of them go to one worker-thread call."""
    from orchestrator.testing import loop_io
    from orchestrator.worktrees import manager as manager_module

    kept = await manager.create_session_worktree("s1", "claude", "t1")
    gone = await manager.create_session_worktree("s2", "claude", "t2")
    shutil.rmtree(gone.path)  # deleted under its session
    hopped = count_hops(monkeypatch)
    with loop_io.watching() as on_loop:
        assert await manager.present_all([kept, gone]) == [True, False]
    assert hopped == [] and on_loop == []
    monkeypatch.setattr(manager_module, "STATS_ON_LOOP", 1)
    assert await manager.present_all([kept, gone]) == [True, False]
    assert len(hopped) == 1


async def test_a_stranded_checkout_is_given_back_before_its_removal_keeps_its_work(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"s1.txt": "work\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    write(session.path, {"later.txt": "edited after the landing\n"})
    admin = Path(git(session.path, "rev-parse", "--absolute-git-dir"))
    shutil.rmtree(admin)  # a CLI deleted its admin directory

    result = await manager.remove_session_worktree(session)

    assert not result.merged and not result.branch_deleted  # its new work is not on the base
    assert result.rescue_ref == "refs/council/rescue/s1"
    assert git(repo, "show", "refs/council/rescue/s1:later.txt") == "edited after the landing"
    assert not session.path.exists()


async def test_branch_deleted_only_once_the_base_contains_it(
    repo: Path, manager: WorktreeManager
) -> None:
    unmerged = await manager.create_session_worktree("s1", "claude", "t1")
    merged = await manager.create_session_worktree("s2", "claude", "t2")
    for session in (unmerged, merged):
        write(session.path, {f"{session.session_id}.txt": "work\n"})
        await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", merged.branch)

    kept = await manager.remove_session_worktree(unmerged)
    assert not kept.merged and not kept.branch_deleted
    assert "council/t1/1" in branches(repo)
    assert git(repo, "rev-parse", "refs/council/rescue/s1") == kept.tip

    gone = await manager.remove_session_worktree(merged)
    assert gone.merged and gone.branch_deleted and gone.rescue_ref is None
    assert "council/t2/1" not in branches(repo)
    assert git_ok(repo, "merge-base", "--is-ancestor", gone.tip or "", "main")


async def test_work_landed_before_other_trains_is_known_merged_from_git_files(
    repo: Path, manager: WorktreeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The merge that landed a session is on the base's first-parent line, behind the merges
    that landed after it: its removal reads that from the loose commits, asking git nothing
    but the removal and the branch's deletion; packed, git is asked (``for-each-ref``)."""
    sessions = [await manager.create_session_worktree(f"s{n}", "claude", f"t{n}") for n in (1, 2)]
    for session in sessions:
        write(session.path, {f"{session.session_id}.txt": "work\n"})
        await manager.commit_in_worktree(session, "work")
        git(repo, "merge", "-q", "--no-ff", "-m", f"land {session.branch}", session.branch)
    trace = traced(tmp_path, monkeypatch)

    first = await manager.remove_session_worktree(sessions[0])

    assert first.merged and first.branch_deleted
    assert "for-each-ref" not in git_processes(trace)
    assert "council/t1/1" not in branches(repo)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    (tmp_path / "packed").mkdir()
    trace = traced(tmp_path / "packed", monkeypatch)

    second = await manager.remove_session_worktree(sessions[1])

    assert second.merged and second.branch_deleted
    assert "for-each-ref" in git_processes(trace)  # the files could not tell: git did


async def test_merged_work_changed_again_is_rescued_not_removed(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.txt": "merged\n"})
    await manager.commit_in_worktree(session, "work")
    git(repo, "merge", "-q", "--ff-only", session.branch)
    write(session.path, {"work.txt": "changed after the merge\n", "more.txt": "new\n"})

    result = await manager.remove_session_worktree(session)

    # git refused the plain removal (the worktree was not clean), so the full path ran: the
    # changes are a rescue commit the base lacks, kept on the branch and a rescue ref.
    assert result.rescue_commit is not None and not result.merged
    assert not result.branch_deleted and result.rescue_ref == "refs/council/rescue/s1"
    assert git(repo, "show", f"{result.rescue_commit}:work.txt") == "changed after the merge"
    assert git(repo, "show", f"{result.rescue_commit}:more.txt") == "new"
    assert result.worktree_removed and not session.path.exists()


async def test_untouched_session_leaves_nothing_behind(
    repo: Path, manager: WorktreeManager
) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    result = await manager.remove_session_worktree(session)
    assert result.merged and result.branch_deleted and result.rescue_commit is None
    assert branches(repo) == set() and registered_paths(repo) == {repo.resolve()}
    assert git(repo, "for-each-ref", "refs/council/") == ""


async def test_removal_waits_for_processes_inside(repo: Path, manager: WorktreeManager) -> None:
    session = await manager.create_session_worktree("s1", "claude", "t1")
    child = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)"], cwd=session.path
    )
    try:
        with pytest.raises(WorktreeBusy, match=f"pid {child.pid}"):
            await manager.remove_session_worktree(session)
        assert session.path.exists() and session.path in registered_paths(repo)
        result = await manager.remove_session_worktree(session, force=True)
        assert result.worktree_removed and not session.path.exists()
    finally:
        child.kill()
        child.wait()


async def test_rescue_ref_of_a_reused_session_id_keeps_the_older_tip(
    repo: Path, manager: WorktreeManager
) -> None:
    first = await manager.create_session_worktree("s1", "claude", "t1")
    write(first.path, {"one.txt": "1\n"})
    old = await manager.remove_session_worktree(first)
    second = await manager.create_session_worktree("s1", "claude", "t2")
    write(second.path, {"two.txt": "2\n"})
    new = await manager.remove_session_worktree(second)
    assert old.tip and new.tip and old.tip != new.tip
    assert git(repo, "rev-parse", "refs/council/rescue/s1") == new.tip
    assert git(repo, "rev-parse", f"refs/council/rescue-old/s1/{old.tip}") == old.tip


async def test_list_worktrees_marks_ours(repo: Path, manager: WorktreeManager) -> None:
    own = repo.parent / "users-own"
    git(repo, "worktree", "add", "-q", "-b", "mine", str(own), "main")
    session = await manager.create_session_worktree("s1", "claude", "t1")
    infos = {info.path: info for info in await manager.list_worktrees()}
    assert infos[repo.resolve()].kind == "main" and not infos[repo.resolve()].ours
    assert infos[own.resolve()].kind == "linked" and infos[own.resolve()].branch == "mine"
    ours = infos[session.path]
    assert ours.ours and ours.kind == "session" and ours.locked and ours.exists
    assert (ours.session_id, ours.cli, ours.task_id) == ("s1", "claude", "t1")
    assert ours.branch == "council/t1/1" and ours.head == session.base_commit
    assert os.path.isdir(ours.path)


@pytest.mark.parametrize("pool_size", [0, 1])
async def test_a_nested_repository_is_never_deleted(repo: Path, pool_size: int) -> None:
    manager = WorktreeManager(repo, settings=WorktreeSettings(pool_size=pool_size))
    session = await manager.create_session_worktree("s1", "claude", "t1")
    nested = session.path / "vendor" / "lib"
    nested.mkdir(parents=True)
    git(nested, "init", "-q", "-b", "main")
    write(nested, {"lib.py": "only here\n"})
    git(nested, "add", "-A")
    git(nested, "commit", "-q", "-m", "history that lives only in the nested repository")

    with pytest.raises(WorkspaceError, match=r"submodules|nested repositories"):
        await manager.remove_session_worktree(session)

    assert (nested / "lib.py").read_text() == "only here\n"
    assert git(nested, "log", "--format=%s") == "history that lives only in the nested repository"
    assert session.path in registered_paths(repo)
    # The fast removal (the branch is merged: it never left the base) was refused by git and
    # put the worktree's lock back as it was before the full path refused too.
    listed = git(repo, "worktree", "list", "--porcelain")
    assert "locked council session=s1 cli=claude task=t1" in listed
    assert git(repo, "ls-tree", "council/t1/1", "vendor/lib").startswith("160000 commit")


async def test_a_build_commit_with_its_diff_starts_no_more_git(
    repo: Path, manager: WorktreeManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Asked for its diff too, a commit starts no more git: the diff (files, stat and patch
    in one process) takes the place of ``diff-tree``."""
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"src/new.py": "a = 1\n"})
    (session.path / "README.md").unlink()
    trace = traced(tmp_path, monkeypatch)

    result = await manager.commit_in_worktree(session, "build", diff=True)

    # The commit written as ``commit-tree`` writes it and the branch moved as ``update-ref``
    # moves it, without a process (``git.loose_objects``, ``git.loose_refs``).
    assert git_processes(trace) == ["ls-files", "add", "write-tree", "diff"]
    monkeypatch.delenv("GIT_CONFIG_GLOBAL")
    assert result.committed and result.sha == git(repo, "rev-parse", session.branch)
    assert result.parent == session.base_commit and sorted(result.files) == [
        "README.md",
        "src/new.py",
    ]
    expected = git(repo, "diff", "--numstat", "-z", "-p", "--no-renames", session.base_commit,
                   session.branch)  # fmt: skip
    assert result.diff is not None and result.diff.rstrip("\n") == expected


async def test_the_orchestrators_own_index_goes_with_its_worktree(
    repo: Path, manager: WorktreeManager
) -> None:
    """The session's commit is built in an index of the orchestrator's own, kept where the CLI
    cannot write (the common dir), and dropped when the worktree is removed."""
    session = await manager.create_session_worktree("s1", "claude", "t1")
    write(session.path, {"work.txt": "work\n"})
    await manager.commit_in_worktree(session, "work", parent=session.base_commit)
    indexes = repo / ".git" / "council" / "index"
    assert [path.name for path in indexes.iterdir() if path.suffix != ".for"] == [session.path.name]
    await manager.remove_session_worktree(session)
    assert list(indexes.iterdir()) == []
