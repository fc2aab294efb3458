"""A commit written as ``git commit-tree`` writes it (``git.loose_objects``): git, given the same
time, makes the very same object id; wherever it cannot be exact the answer is None."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from orchestrator.git import loose_objects
from orchestrator.git.loose_objects import write_commit
from tests.support.worktree_helpers import git, git_ok, make_repo

ENV = {
    "GIT_AUTHOR_NAME": "CLI Council",
    "GIT_AUTHOR_EMAIL": "council@localhost",
    "GIT_COMMITTER_NAME": "CLI Council",
    "GIT_COMMITTER_EMAIL": "council@localhost",
}


@pytest.fixture
def repo(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(tmp_path / "global.gitconfig"))
    repo = make_repo(tmp_path / "repo")
    # Loose objects, as a fresh write-tree or merge-tree leaves them.
    git(repo, "commit", "-q", "--allow-empty", "-m", "second")
    (repo / "new.txt").write_text("new\n")
    git(repo, "add", "new.txt")
    return repo


def _by_git(repo: Path, stamp: str, *args: str) -> str:
    env = {**os.environ, **ENV, "GIT_AUTHOR_DATE": stamp, "GIT_COMMITTER_DATE": stamp}
    done = subprocess.run(
        ["git", "-C", str(repo), "commit-tree", "--no-gpg-sign", *args],
        env=env, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return done.stdout.strip()


@pytest.mark.parametrize("message", ["council: build", "Merge x\n\nCouncil-Task: t1\n"])
def test_the_same_object_git_writes(
    repo: Path, message: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    common = repo / ".git"
    tree = git(repo, "write-tree")
    base, parent = git(repo, "rev-parse", "HEAD~1"), git(repo, "rev-parse", "HEAD")
    # Both writes in one second, as the clock gave it to the first: the second write is the
    # same commit only then (a loaded machine once wrote it a second later, another commit).
    stamp = loose_objects._stamp()
    monkeypatch.setattr(loose_objects, "_stamp", lambda: stamp)

    ours = write_commit(common, tree, [parent, base], message, ENV)

    assert ours is not None
    raw = git(repo, "cat-file", "commit", ours)
    stamp = raw.split("\ncommitter CLI Council <council@localhost> ", 1)[1].split("\n", 1)[0]
    assert _by_git(repo, stamp, tree, "-p", parent, "-p", base, "-m", message) == ours
    assert git(repo, "rev-parse", f"{ours}^1", f"{ours}^2").split() == [parent, base]
    assert git_ok(repo, "fsck", "--no-progress", "--strict")
    # Written again: the same object, left as it was.
    before = os.stat(common / "objects" / ours[:2] / ours[2:])
    assert write_commit(common, tree, [parent, base], message, ENV) in {ours, None}
    assert os.stat(common / "objects" / ours[:2] / ours[2:]).st_ino == before.st_ino


def test_git_is_asked_where_this_cannot_be_exact(repo: Path) -> None:
    common = repo / ".git"
    tree = git(repo, "write-tree")
    parent = git(repo, "rev-parse", "HEAD")
    (repo / "blob.txt").write_text("a blob\n")
    blob = git(repo, "hash-object", "-w", "blob.txt")  # loose: its type is read
    dated = {**ENV, "GIT_COMMITTER_DATE": "1 +0000"}
    assert write_commit(common, tree, [parent], "m", dated) is None
    assert write_commit(common, tree, [parent], "m", {**ENV, "GIT_AUTHOR_NAME": "Ann <x>"}) is None
    assert write_commit(common, tree, [parent], "m", {**ENV, "GIT_AUTHOR_NAME": "Ann."}) is None
    assert write_commit(common, tree, [parent], "m", {}) is None
    assert write_commit(common, "f" * 40, [parent], "m", ENV) is None  # no such tree here
    assert write_commit(common, tree, [blob], "m", ENV) is None  # a parent that is no commit
    with (common / "config").open("a") as config:
        config.write("[i18n]\n\tcommitEncoding = ISO-8859-1\n")
    assert write_commit(common, tree, [parent], "m", ENV) is None


def test_a_link_planted_in_the_object_store_is_never_followed(repo: Path, tmp_path: Path) -> None:
    common = repo / ".git"
    tree = git(repo, "write-tree")
    parent = git(repo, "rev-parse", "HEAD")
    first = write_commit(common, tree, [parent], "probe", ENV)
    assert first is not None
    outside = tmp_path / "outside"
    outside.mkdir()
    # Every shard directory a commit may land in made a link out of the store.
    for shard in range(256):
        path = common / "objects" / f"{shard:02x}"
        if not path.exists():
            os.symlink(outside, path)
    message = "after the links"
    written = write_commit(common, tree, [parent], message, ENV)
    assert written is None or not (common / "objects" / written[:2]).is_symlink()
    assert list(outside.iterdir()) == []
