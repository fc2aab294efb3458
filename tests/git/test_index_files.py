"""A checkout read clean from git's index and files (``git.index_files``) only where git's own
status lists nothing; every change, staged or not, racy or not, leaves the answer to git."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.git.index_files import clean
from orchestrator.merge.queue import MergeQueue
from orchestrator.merge.types import MergeStatus
from tests.support.merge_repo import commit_on
from tests.support.worktree_helpers import git, make_repo

ENV: dict[str, str] = {}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.gitconfig"))
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "d/b.txt": "b\n"})
    git(repo, "checkout", "-q", "-b", "side")
    (repo / "d" / "c.txt").write_text("c\n")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "side")
    git(repo, "checkout", "-q", "main")
    git(repo, "merge", "-q", "--ff-only", "side")  # files and index written just now: racy
    return repo


def _clean(repo: Path) -> bool | None:
    return clean(repo, repo / ".git", repo / ".git", ENV)


def test_a_checkout_git_calls_clean_is_read_clean(repo: Path) -> None:
    assert git(repo, "status", "--porcelain", "--untracked-files=no") == ""
    assert _clean(repo) is True
    (repo / "notes.txt").write_text("untracked: not git's status either\n")
    assert _clean(repo) is True


def test_every_change_is_left_to_git(repo: Path) -> None:
    """Each change git's status lists is never read clean (git is asked); where git lists
    nothing, a True is allowed (what it costs to know depends on the index's stat data)."""

    def agrees() -> bool | None:
        answer = _clean(repo)
        listed = git(repo, "status", "--porcelain", "--untracked-files=no")
        assert answer is None or listed == "", listed
        return answer

    # A file changed to bytes of the same size, its times put back: racy or not, not clean.
    target = repo / "d" / "c.txt"
    before = os.stat(target)
    target.write_text("C\n")
    os.utime(target, ns=(before.st_atime_ns, before.st_mtime_ns))
    assert agrees() is None
    target.write_text("c\n")
    agrees()  # its bytes as before: clean to git, which compares them
    (repo / "a.txt").write_text("changed\n")
    assert agrees() is None
    git(repo, "add", "a.txt")  # staged: the index's tree is no longer HEAD's
    assert agrees() is None
    git(repo, "reset", "-q", "--hard")
    agrees()
    (repo / "a.txt").unlink()
    assert agrees() is None
    git(repo, "checkout", "-q", "--", "a.txt")
    os.chmod(repo / "a.txt", 0o755)
    assert agrees() is None
    os.chmod(repo / "a.txt", 0o644)
    # The directory moved and a link left in its place: the same files, yet git calls them
    # deleted (it never reads through a link on the way).
    (repo / "d").rename(repo / "elsewhere")
    os.symlink("elsewhere", repo / "d")
    assert agrees() is None


def test_attributes_or_line_endings_leave_it_to_git(repo: Path) -> None:
    git(repo, "config", "core.autocrlf", "input")
    assert _clean(repo) is None
    git(repo, "config", "--unset", "core.autocrlf")
    (repo / ".gitattributes").write_text("*.txt text\n")
    git(repo, "add", ".gitattributes")
    git(repo, "commit", "-q", "-m", "attributes")
    assert _clean(repo) is None


async def test_a_landing_into_the_checked_out_base_asks_no_status(tmp_path: Path) -> None:
    """The base checked out and clean: its fast-forwards start no ``status``."""
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n"})
    for name in ("x", "y"):
        commit_on(repo, name, {f"{name}.txt": name})
    queue = MergeQueue(repo, "main", secrets=dict)
    first = await queue.merge("s1", "x", task_id="x")
    second = await queue.merge("s1", "y", task_id="y")
    assert first.status is second.status is MergeStatus.MERGED
    assert (repo / "y.txt").read_text() == "y" and git(repo, "status", "--porcelain") == ""
    # merge-tree, the credential check's diff and the fast-forward: no status asked.
    assert second.git_calls == 3
