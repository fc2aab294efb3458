"""What a move between two trees adds and deletes, read from loose objects (``git.tree_files``),
is exactly what ``git diff-tree -r --no-renames --name-status --diff-filter=AD`` says, in its
order; where the files cannot tell (packed objects, not a tree), nothing is guessed."""

from __future__ import annotations

import os
import random
import subprocess
from pathlib import Path

from orchestrator.git.tree_files import added_and_deleted, loose_tree
from tests.support.worktree_helpers import git

ENV = {**os.environ, "GIT_CONFIG_NOSYSTEM": "1"}


def tree_of(repo: Path, files: dict[str, tuple[str, str]]) -> str:
    """A tree of ``files`` (path -> (mode, content or a link's target)), written loose."""
    index = repo / "scratch-index"
    index.unlink(missing_ok=True)
    env = {**ENV, "GIT_INDEX_FILE": str(index)}
    lines = []
    for path, (mode, content) in files.items():
        blob = (
            subprocess.run(
                ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
                input=content.encode(),
                capture_output=True,
                check=True,
                env=env,
            )
            .stdout.decode()
            .strip()
        )
        lines.append(f"{mode} {blob}\t{path}")
    subprocess.run(
        ["git", "-C", str(repo), "update-index", "--add", "--index-info"],
        input="\n".join(lines).encode(),
        check=True,
        env=env,
    )
    return (
        subprocess.run(
            ["git", "-C", str(repo), "write-tree"], capture_output=True, check=True, env=env
        )
        .stdout.decode()
        .strip()
    )


def git_says(repo: Path, old: str, new: str) -> tuple[list[str], list[str]]:
    out = subprocess.run(
        [
            *("git", "-C", str(repo), "diff-tree", "-r", "-z", "--no-renames", "--name-status"),
            *("--diff-filter=AD", old, new),
        ],
        capture_output=True,
        check=True,
        env=ENV,
    ).stdout.decode("utf-8", "replace")
    fields = out.split("\0")
    pairs = list(zip(fields[0::2], fields[1::2], strict=False))
    return [p for s, p in pairs if s == "A"], [p for s, p in pairs if s == "D"]


def _random_files(rng: random.Random) -> dict[str, tuple[str, str]]:
    names = ["a", "b", "x", "x.txt", "x0", "x-y", "d", "d/e", "d/e/f", "x/in", "x/in/deep", "z"]
    files: dict[str, tuple[str, str]] = {}
    for _ in range(rng.randint(1, 9)):
        path = rng.choice(names)
        if any(p.startswith(f"{path}/") or path.startswith(f"{p}/") for p in files):
            continue  # a path is a file or a directory in one tree, never both
        mode = rng.choice(["100644", "100644", "100755", "120000"])
        files[path] = (mode, rng.choice(["one", "two"]))
    return files


def test_it_says_what_git_says_in_git_order(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    common = repo / ".git"
    rng = random.Random(51)
    shapes = [
        ({"x": ("100644", "f")}, {"x/in": ("100644", "d"), "x.txt": ("100644", "t")}),
        ({"x/in/deep": ("100644", "d"), "x0": ("100644", "0")}, {"x": ("120000", "l")}),
        ({"a": ("100644", "1")}, {"a": ("100755", "1"), "b": ("120000", "a")}),
        ({"d/e/f": ("100644", "1"), "z": ("100644", "z")}, {"d/e/f": ("100644", "2")}),
        ({}, {"d/e/f": ("100644", "1"), "x/in": ("100644", "2")}),
        ({"d/e/f": ("100644", "1"), "x/in": ("100644", "2")}, {}),
    ]
    shapes += [(_random_files(rng), _random_files(rng)) for _ in range(60)]
    compared = 0
    for before, after in shapes:
        old, new = tree_of(repo, before), tree_of(repo, after)
        moves = added_and_deleted(common, old, new)
        assert moves is not None, (before, after)
        assert (moves.added, moves.deleted) == git_says(repo, old, new), (before, after)
        compared += 1
    assert compared == len(shapes)


def test_a_gitlink_added_is_a_file_added(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    old = tree_of(repo, {"a": ("100644", "a")})
    new = tree_of(repo, {"a": ("100644", "a")})
    index = {**ENV, "GIT_INDEX_FILE": str(repo / "gitlink-index")}
    subprocess.run(["git", "-C", str(repo), "read-tree", new], check=True, env=index)
    subprocess.run(
        ["git", "-C", str(repo), "update-index", "--add", "--cacheinfo", f"160000,{'1' * 40},m"],
        check=True,
        env=index,
    )
    new = (
        subprocess.run(
            ["git", "-C", str(repo), "write-tree"], capture_output=True, check=True, env=index
        )
        .stdout.decode()
        .strip()
    )
    moves = added_and_deleted(repo / ".git", old, new)
    assert moves is not None and (moves.added, moves.deleted) == git_says(repo, old, new)
    assert moves.added == ["m"]


def test_packed_or_not_a_tree_is_left_to_git(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q", "-b", "main")
    common = repo / ".git"
    old = tree_of(repo, {"a": ("100644", "a")})
    new = tree_of(repo, {"a": ("100644", "a"), "d/b": ("100644", "b")})
    blob = git(repo, "rev-parse", f"{new}:a")
    assert loose_tree(common, new) is not None
    assert added_and_deleted(common, old, blob) is None  # a blob, not a tree
    assert added_and_deleted(common, old, "not an id") is None
    commit = git(repo, "commit-tree", new, "-m", "keep")  # kept by a tag through the repack
    git(repo, "tag", "keep", commit)
    git(repo, "repack", "-a", "-d", "-q")
    git(repo, "prune-packed")
    assert loose_tree(common, new) is None
    assert added_and_deleted(common, old, new) is None
    assert added_and_deleted(common, new, new) is not None  # the same tree: nothing read
