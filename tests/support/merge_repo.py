"""Real git repositories for the merge queue tests: build commits without touching checkouts.

Commits are made with plumbing and a private index file, so building a branch never moves
the HEAD, index or files of any checkout (the queue's checkout handling is what is tested).
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Mapping
from pathlib import Path

from tests.support.worktree_helpers import ENV

SHARED = "".join(f"line {n}\n" for n in range(1, 11))


def git(cwd: Path, *args: str, check: bool = True, env: Mapping[str, str] | None = None) -> str:
    result = subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        text=True,
        env={**ENV, **(env or {})},
        stdin=subprocess.DEVNULL,
    )
    if check and result.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {result.stderr}")
    return result.stdout.strip()


def init_repo(path: Path, *, checked_out: bool) -> Path:
    """A repository with one commit on ``main``; its main checkout holds ``main`` or is
    detached at the same commit."""
    path.mkdir(parents=True)
    git(path, "init", "-q", "-b", "main")
    git(path, "config", "user.name", "Test User")
    git(path, "config", "user.email", "test@example.com")
    with (path / ".git" / "info" / "exclude").open("a") as exclude:
        exclude.write(".council/\n")
    (path / "README.md").write_text("hello\n")
    (path / "shared.txt").write_text(SHARED)
    git(path, "add", "README.md", "shared.txt")
    git(path, "commit", "-q", "-m", "initial")
    if not checked_out:
        git(path, "switch", "-q", "--detach")
    return path


def commit_on(
    repo: Path,
    branch: str,
    files: Mapping[str, str | None],
    *,
    start: str | None = None,
    message: str = "work",
) -> str:
    """Commit ``files`` (content, or None to delete) on ``branch``, created at ``start``
    (default ``main``) if missing. Returns the new commit."""
    parent = git(repo, "rev-parse", "--verify", "--quiet", f"refs/heads/{branch}", check=False)
    if not parent:
        parent = git(repo, "rev-parse", start or "main")
    with tempfile.TemporaryDirectory() as tmp:
        env = {"GIT_INDEX_FILE": str(Path(tmp) / "index")}
        git(repo, "read-tree", parent, env=env)
        for path, content in files.items():
            if content is None:
                git(repo, "update-index", "--force-remove", path, env=env)
                continue
            blob = subprocess.run(
                ["git", "-C", str(repo), "hash-object", "-w", "--stdin"],
                input=content,
                capture_output=True,
                text=True,
                check=True,
                env=ENV,
            ).stdout.strip()
            git(repo, "update-index", "--add", "--cacheinfo", f"100644,{blob},{path}", env=env)
        tree = git(repo, "write-tree", env=env)
    commit = git(repo, "commit-tree", tree, "-p", parent, "-m", message)
    git(repo, "update-ref", f"refs/heads/{branch}", commit)
    return commit


def tip(repo: Path, ref: str = "main") -> str:
    return git(repo, "rev-parse", ref)


def show(repo: Path, ref: str, path: str) -> str:
    return git(repo, "show", f"{ref}:{path}")


def first_parent_log(repo: Path, ref: str = "main", fmt: str = "%H") -> list[str]:
    return git(repo, "log", "--first-parent", f"--format={fmt}", ref).splitlines()


def all_refs(repo: Path) -> str:
    return git(repo, "for-each-ref", "--format=%(refname) %(objectname)")


def edit_line(number: int, text: str) -> str:
    """``shared.txt`` with line ``number`` replaced."""
    lines = SHARED.splitlines(keepends=True)
    lines[number - 1] = f"{text}\n"
    return "".join(lines)
