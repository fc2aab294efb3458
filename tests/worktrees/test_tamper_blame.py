"""Blame is exact (``orchestrator.worktrees.tamper.blame``), on real repositories and real git,
with two sessions side by side: a session committing on its own branch is nobody's tampering;
one checking the base out in its own worktree is the only one blamed, whichever is checked
first; a worktree whose admin directory was deleted is given back to git before anything else
touches it, its edits changes again; a running session's branch deleted is put back; what
cannot be traced rechecks (retries) both, and fails neither for good."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from orchestrator.git.gitfile import read_gitfile
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree
from orchestrator.worktrees.tamper.guard import TamperGuard
from tests.support.merge_repo import git
from tests.support.scheduler_helpers import new_repo


async def two_sessions(
    tmp_path: Path,
) -> tuple[WorktreeManager, TamperGuard, Path, SessionWorktree, SessionWorktree]:
    repo = new_repo(tmp_path)
    manager = WorktreeManager(repo, base_branch="main")
    one = await manager.create_session_worktree("one", "cli", "t1")
    two = await manager.create_session_worktree("two", "cli", "t2")
    return manager, await manager.tamper_guard(), repo, one, two


def cli_commits(worktree: Path, name: str) -> str:
    """What aider does: commit its edit on the branch its worktree is on."""
    (worktree / name).write_text(f"{name} by the CLI\n")
    git(worktree, "add", name)
    git(worktree, "commit", "-q", "-m", f"aider: {name}")
    return git(worktree, "rev-parse", "HEAD")


@pytest.mark.parametrize("committer_first", [True, False])
async def test_a_cli_committing_on_its_own_branch_is_nobodys_tampering(
    tmp_path: Path, committer_first: bool
) -> None:
    manager, guard, _repo, one, two = await two_sessions(tmp_path)
    first, second = await guard.watch(one.path, one.branch), await guard.watch(two.path, two.branch)
    tip = cli_commits(one.path, "aider.txt")
    (one.path / "later.txt").write_text("left for the orchestrator to commit\n")
    # The orchestrator commits on top of the CLI's commits (its own write, in its ref book).
    done = await manager.commit_in_worktree(one, "council: t1 build")
    assert done.committed
    order = (first, second) if committer_first else (second, first)
    assert [await guard.finish(watch) for watch in order] == [None, None]
    assert git(one.path, "rev-parse", "HEAD~1") == tip  # continued from the CLI's commits


@pytest.mark.parametrize("culprit_first", [True, False])
async def test_a_cli_checking_the_base_out_in_its_own_worktree_is_the_only_one_blamed(
    tmp_path: Path, culprit_first: bool
) -> None:
    _manager, guard, _repo, one, two = await two_sessions(tmp_path)
    culprit, sibling = await guard.watch(one.path, one.branch), await guard.watch(two.path)
    git(one.path, "switch", "-q", "--ignore-other-worktrees", "main")

    if culprit_first:
        found, clean = await guard.finish(culprit), await guard.finish(sibling)
    else:
        clean, found = await guard.finish(sibling), await guard.finish(culprit)
    assert clean is None
    assert found is not None and not found.retryable
    assert f"worktree {one.path}: has the base branch main checked out (detached" in found.message
    assert git(one.path, "symbolic-ref", "-q", "HEAD", check=False) == ""


async def test_a_worktree_whose_admin_dir_was_deleted_is_given_back_to_git(
    tmp_path: Path,
) -> None:
    manager, guard, repo, one, two = await two_sessions(tmp_path)
    victim, deleter = await guard.watch(one.path, one.branch), await guard.watch(two.path)
    (one.path / "README.md").write_text("the victim's edit\n")
    (one.path / "new.txt").write_text("the victim's new file\n")
    admin = read_gitfile(one.path)
    assert admin is not None
    shutil.rmtree(admin)  # what `rm -rf .git/worktrees/one` from the sibling's CLI does
    assert git(one.path, "status", check=False) == ""  # git no longer knows these files

    found = await guard.finish(deleter)
    assert found is not None and found.retryable  # who did it cannot be told: both rechecked
    assert ".council/worktrees/one: its git admin directory was deleted" in found.message
    assert "recreated on council/t1/1, 2 changed paths known to git again" in found.message
    assert "council/t1/1, council/t2/1 ran then" in found.message
    status = git(one.path, "status", "--porcelain", "--untracked-files=all")
    assert {line.strip() for line in status.splitlines()} == {"M README.md", "?? new.txt"}
    listed = git(repo, "worktree", "list", "--porcelain")
    assert f"worktree {one.path}\n" in listed and "locked council session=one" in listed
    found = await guard.finish(victim)  # told at its own check, before its work is committed
    assert found is not None and found.retryable
    done = await manager.commit_in_worktree(one, "council: t1 build stopped")
    assert done.committed
    assert git(repo, "show", f"{one.branch}:new.txt") == "the victim's new file"
    assert git(repo, "show", f"{one.branch}:README.md") == "the victim's edit"


async def test_a_worktree_cut_off_while_its_session_ran_alone_is_that_sessions(
    tmp_path: Path,
) -> None:
    _manager, guard, _repo, one, _two = await two_sessions(tmp_path)
    watch = await guard.watch(one.path, one.branch)
    admin = read_gitfile(one.path)
    assert admin is not None
    shutil.rmtree(admin)
    found = await guard.finish(watch)
    assert found is not None and not found.retryable
    assert git(one.path, "symbolic-ref", "HEAD") == f"refs/heads/{one.branch}"


async def test_a_running_sessions_branch_deleted_is_put_back_and_blames_nobody_for_good(
    tmp_path: Path,
) -> None:
    _manager, guard, repo, one, two = await two_sessions(tmp_path)
    first, second = await guard.watch(one.path, one.branch), await guard.watch(two.path)
    tip = git(repo, "rev-parse", two.branch)
    git(repo, "update-ref", "-d", f"refs/heads/{two.branch}")

    found = await guard.finish(first)
    assert found is not None and found.retryable
    assert f"refs/heads/{two.branch}: deleted (it was at {tip[:10]}) (restored" in found.message
    assert git(repo, "rev-parse", two.branch) == tip
    found = await guard.finish(second)
    assert found is not None and found.retryable


async def test_a_change_traced_to_a_session_is_owed_to_it_alone_not_to_later_ones(
    tmp_path: Path,
) -> None:
    _manager, guard, _repo, one, two = await two_sessions(tmp_path)
    culprit, sibling = await guard.watch(one.path, one.branch), await guard.watch(two.path)
    worktree_config = read_gitfile(one.path)
    assert worktree_config is not None
    (worktree_config / "config.worktree").write_text("[core]\n\tfsmonitor = /tmp/x\n")
    assert await guard.finish(sibling) is None  # its own config.worktree: the culprit's
    found = await guard.finish(culprit)
    assert found is not None and not found.retryable
    assert ".git/worktrees/one/config.worktree: created (moved aside" in found.message
    assert not (worktree_config / "config.worktree").exists()


async def test_a_session_started_after_a_change_is_cleared_and_never_plants_it_again(
    tmp_path: Path,
) -> None:
    _manager, guard, repo, one, two = await two_sessions(tmp_path)
    config = repo / ".git" / "config"
    before = config.read_bytes()
    culprit = await guard.watch(one.path, one.branch)
    config.write_bytes(before + b"[alias]\n\tst = status\n")
    later = await guard.watch(two.path, two.branch)  # its watch already saw the change

    found = await guard.finish(culprit)
    assert found is not None and not found.retryable  # the only one that could have
    assert config.read_bytes() == before
    assert await guard.finish(later) is None
    assert config.read_bytes() == before  # its check did not put its own snapshot back


async def test_a_session_that_ended_before_a_change_is_cleared_of_it(tmp_path: Path) -> None:
    _manager, guard, repo, one, two = await two_sessions(tmp_path)
    config = repo / ".git" / "config"
    culprit = await guard.watch(one.path, one.branch)
    quick = await guard.watch(two.path, two.branch)
    assert await guard.finish(quick) is None  # its check saw nothing: it ended clean
    config.write_bytes(config.read_bytes() + b"[alias]\n\tst = status\n")
    found = await guard.finish(culprit)
    assert found is not None and not found.retryable
