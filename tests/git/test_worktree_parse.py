"""Readers of git's ``-z`` output, on output real git printed for awkward names."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.parse import covered_by, parse_numstat, parse_status, parse_worktree_list
from orchestrator.worktrees.names import lock_reason, parse_lock_reason
from tests.support.worktree_helpers import git, make_repo, write


def test_worktree_list_with_odd_paths_and_reasons(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    odd = tmp_path / "with space\nand newline"
    git(repo, "worktree", "add", "-q", "-b", "odd", str(odd), "main")
    git(repo, "worktree", "lock", "--reason", "two words\nsecond line", str(odd))
    detached = tmp_path / "detached"
    git(repo, "worktree", "add", "-q", "--detach", str(detached), "main")
    gone = tmp_path / "gone"
    git(repo, "worktree", "add", "-q", "-b", "gone", str(gone), "main")
    git(repo, "worktree", "lock", str(gone))
    shutil.rmtree(gone)

    raws = parse_worktree_list(git(repo, "worktree", "list", "--porcelain", "-z") + "\0")
    by_path = {raw.path: raw for raw in raws}
    assert raws[0].path == repo and raws[0].branch_ref == "refs/heads/main"
    assert by_path[odd].locked and by_path[odd].lock_reason == "two words\nsecond line"
    assert by_path[detached].detached and by_path[detached].branch_ref is None
    assert by_path[gone].locked and by_path[gone].lock_reason is None
    assert all(raw.head and len(raw.head) == 40 for raw in raws)


def test_status_lists_every_kind_of_change(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"a.txt": "a\n", "b.txt": "b\n", "c.txt": "c\n"})
    git(repo, "mv", "a.txt", "renamed -> a.txt")
    write(repo, {"b.txt": "changed\n", "new dir/untracked.txt": "u\n"})
    (repo / "c.txt").unlink()
    out = git(repo, "status", "--porcelain=v2", "--branch", "-z", "--untracked-files=all")
    status = parse_status(out)
    assert status.branch == "main" and status.head == git(repo, "rev-parse", "HEAD")
    assert sorted(status.paths) == sorted(
        ["renamed -> a.txt", "a.txt", "b.txt", "c.txt", "new dir/untracked.txt"]
    )
    assert status.work(["new dir"]) == [p for p in status.paths if p != "new dir/untracked.txt"]
    git(repo, "checkout", "-q", "--detach")
    detached = git(repo, "status", "--porcelain=v2", "--branch", "-z")
    assert parse_status(detached).branch is None


def test_numstat_counts_binary_files_without_lines() -> None:
    out = "3\t1\tsrc/a.py\0-\t-\timage.png\0" + "0\t7\tgone.txt\0"
    assert parse_numstat(out) == (3, 3, 8)
    assert parse_numstat("") == (0, 0, 0)


def test_covered_by_matches_whole_components() -> None:
    assert covered_by("config/local.json", ["config"])
    assert covered_by(".env", [".env"])
    assert not covered_by("configuration.txt", ["config"])
    assert not covered_by(".envrc", [".env"])


def test_gitfile_and_lock_reason(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo")
    linked = tmp_path / "linked"
    git(repo, "worktree", "add", "-q", "-b", "x", str(linked), "main")
    assert read_gitfile(linked) == repo / ".git" / "worktrees" / "linked"
    assert read_gitfile(repo) is None  # a directory, not a file
    assert parse_lock_reason(lock_reason("s1", "claude", "t.1")) == ("s1", "claude", "t.1")
    assert parse_lock_reason("locked by a human") is None
    assert parse_lock_reason(None) is None


def test_a_git_file_a_cli_made_into_something_else_reads_as_none_at_once(tmp_path: Path) -> None:
    """A CLI owns its worktree's ``.git``: a FIFO there (an open for reading would wait for a
    writer), a link to a device without end, a file of megabytes: none is read as git writes
    it, each answers None at once, and nothing is read past what a ``gitdir:`` line holds."""
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    gitfile = worktree / ".git"
    gitfile.write_text("gitdir: ../repo/.git/worktrees/one\n")
    assert read_gitfile(worktree) == tmp_path / "repo" / ".git" / "worktrees" / "one"
    gitfile.unlink()
    os.mkfifo(gitfile)
    assert read_gitfile(worktree) is None
    gitfile.unlink()
    gitfile.symlink_to("/dev/zero")
    assert read_gitfile(worktree) is None
    gitfile.unlink()
    gitfile.write_bytes(b"gitdir: " + b"x" * (8 << 20))
    assert read_gitfile(worktree) is None
