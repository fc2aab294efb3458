"""Refs read from git's files (``orchestrator.git.ref_files``) are exactly what ``git
for-each-ref`` says, loose or packed, and nothing is answered where the files cannot tell."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.git.ref_files import (
    commit_parents,
    first_parents_merged,
    first_parents_reach,
    loose_commit,
    read_refs,
)

PATTERNS = ("refs/heads/main", "refs/heads/council", "refs/council")
IDENT = ("-c", "user.name=t", "-c", "user.email=t@t")


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(repo), *args], capture_output=True, text=True, check=True
    )
    return done.stdout


def for_each_ref(repo: Path) -> dict[str, str]:
    listed = git(repo, "for-each-ref", "--format=%(objectname) %(refname)", *PATTERNS)
    return {ref: sha for sha, _, ref in (line.partition(" ") for line in listed.splitlines())}


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    git(tmp_path, "init", "-q", "-b", "main", str(repo))
    for message in ("1", "2"):
        git(repo, *IDENT, "commit", "-q", "--allow-empty", "-m", message)
    git(repo, "branch", "council/t1/1", "HEAD~1")
    git(repo, "branch", "council/t1/2")
    git(repo, "branch", "councilor")  # not under refs/heads/council/: never matched
    git(repo, "update-ref", "refs/council/rescue/s1", "HEAD~1")
    return repo


def test_loose_refs_read_as_git_lists_them(repo: Path) -> None:
    assert read_refs(repo / ".git", PATTERNS) == for_each_ref(repo)
    assert "refs/heads/councilor" not in (read_refs(repo / ".git", PATTERNS) or {})


def test_packed_and_loose_refs_together_loose_winning(repo: Path) -> None:
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    git(repo, "update-ref", "refs/heads/council/t1/1", "HEAD")  # loose again, over its packed line
    git(repo, "update-ref", "-d", "refs/council/rescue/s1")  # gone from packed-refs too
    found = read_refs(repo / ".git", PATTERNS)
    assert found == for_each_ref(repo)
    assert found is not None and "refs/council/rescue/s1" not in found


def test_a_symbolic_ref_among_them_is_left_to_git(repo: Path) -> None:
    git(repo, "symbolic-ref", "refs/heads/council/t1/3", "refs/heads/main")
    assert read_refs(repo / ".git", PATTERNS) is None


def test_a_reftable_repository_is_left_to_git(tmp_path: Path) -> None:
    repo = tmp_path / "reftable"
    made = subprocess.run(
        ["git", "init", "-q", "--ref-format=reftable", str(repo)], capture_output=True
    )
    if made.returncode != 0:
        (repo / ".git" / "reftable").mkdir(parents=True)  # an older git: the layout alone
    assert read_refs(repo / ".git", PATTERNS) is None


def test_a_loose_commits_parents_as_git_lists_them(repo: Path) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    merge = git(
        repo, *IDENT, "commit-tree", tree, "-p", "main", "-p", "council/t1/1", "-m", "merge"
    ).strip()
    parents = git(repo, "rev-parse", f"{merge}^1", f"{merge}^2").split()
    assert commit_parents(repo / ".git", merge) == parents
    root = git(repo, "rev-list", "--max-parents=0", "HEAD").strip()
    assert commit_parents(repo / ".git", root) == []


def test_a_packed_commit_or_another_object_is_left_to_git(repo: Path) -> None:
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    head = git(repo, "rev-parse", "HEAD").strip()
    assert commit_parents(repo / ".git", tree) is None  # a tree, not a commit
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    assert commit_parents(repo / ".git", head) is None
    assert commit_parents(repo / ".git", "not-an-id") is None


def test_the_tips_of_a_merge_read_from_files_match_git(repo: Path) -> None:
    from orchestrator.git.merge_tree import GitCalls, read_tips
    from orchestrator.git.repo import Git

    calls = GitCalls(Git(repo, None))
    from_files = read_tips(calls, "refs/heads/main", "refs/heads/council/t1/1", repo / ".git")
    assert calls.count == 0  # no process: both tips are loose commits
    from_git = read_tips(calls, "refs/heads/main", "refs/heads/council/t1/1")
    assert calls.count == 1
    assert from_files == from_git


def test_first_parents_reach_only_what_the_loose_commits_show(repo: Path) -> None:
    """Only a True answers (``first_parents_reach``): a commit merged on the way, a walk
    through a packed commit or one longer than its limit all say "ask git"."""
    first = git(repo, "rev-parse", "HEAD~1").strip()
    made = git(repo, *IDENT, "commit-tree", "HEAD^{tree}", "-p", first, "-m", "work").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    merged = git(repo, *IDENT, "commit-tree", tree, "-p", "main", "-p", made, "-m", "merge").strip()
    common = repo / ".git"
    assert first_parents_reach(common, git(repo, "rev-parse", "main").strip(), first, unseen=made)
    assert first_parents_reach(common, merged, first, unseen="0" * 40)
    assert not first_parents_reach(common, merged, first, unseen=made)  # merged on the way
    assert not first_parents_reach(common, made, first, unseen=made)
    assert not first_parents_reach(common, "main", first, unseen=made)  # not an id
    tip = git(repo, "rev-parse", "main").strip()
    assert not first_parents_reach(common, tip, first, unseen=made, limit=0)  # too long
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    head = git(repo, "rev-parse", "main").strip()
    assert not first_parents_reach(common, head, first, unseen=made)  # packed: ask git
    assert first_parents_reach(common, first, first, unseen=made)  # itself, nothing read


def test_first_parents_merged_answers_only_what_the_loose_commits_show(repo: Path) -> None:
    """``first_parents_merged``: a commit on the first-parent line or merged into it is held;
    one merged nowhere, a walk stopped at the fork point, a packed one: "ask git"."""
    fork = git(repo, "rev-parse", "HEAD~1").strip()
    work = git(repo, *IDENT, "commit-tree", "HEAD^{tree}", "-p", fork, "-m", "work").strip()
    other = git(repo, *IDENT, "commit-tree", "HEAD^{tree}", "-p", fork, "-m", "other").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    landed = git(repo, *IDENT, "commit-tree", tree, "-p", "main", "-p", work, "-m", "m").strip()
    later = git(repo, *IDENT, "commit-tree", tree, "-p", landed, "-m", "later").strip()
    common = repo / ".git"
    assert first_parents_merged(common, later, work)  # merged one step behind the tip
    assert first_parents_merged(common, later, fork)  # on the line itself
    assert not first_parents_merged(common, later, other)  # merged nowhere
    assert not first_parents_merged(common, later, other, stop=fork)
    assert not first_parents_merged(common, later, work, stop=landed)  # gave up before it
    assert not first_parents_merged(common, later, work, limit=0)
    git(repo, "update-ref", "refs/heads/keep", later)
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    assert not first_parents_merged(common, later, work)  # packed: ask git


def test_a_loose_commit_is_read_only_when_its_bytes_are_its_name(repo: Path) -> None:
    """A file planted at a packed commit's loose path, with another commit's bytes: git reads
    the pack, and ``loose_commit`` (which every in-process read of a commit goes through)
    answers None, so its caller asks git, never the decoy's tree and parents."""
    import zlib

    head = git(repo, "rev-parse", "HEAD").strip()
    tree = git(repo, "rev-parse", "HEAD^{tree}").strip()
    assert loose_commit(repo / ".git", head) == (tree, [git(repo, "rev-parse", "HEAD~1").strip()])
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    body = f"tree {tree}\nauthor a <a> 1 +0000\ncommitter a <a> 1 +0000\n\ndecoy\n".encode()
    path = repo / ".git" / "objects" / head[:2] / head[2:]
    path.parent.mkdir(exist_ok=True)
    path.write_bytes(zlib.compress(b"commit %d\0" % len(body) + body))
    assert loose_commit(repo / ".git", head) is None
    assert commit_parents(repo / ".git", head) is None  # not read from the decoy either
