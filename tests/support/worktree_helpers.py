"""Real git repositories for the worktree tests (plain git through subprocess, so the tests
check the manager's work with a tool other than the one it uses)."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Mapping
from pathlib import Path

ENV = {
    **os.environ,
    "GIT_AUTHOR_NAME": "Test User",
    "GIT_AUTHOR_EMAIL": "test@example.com",
    "GIT_COMMITTER_NAME": "Test User",
    "GIT_COMMITTER_EMAIL": "test@example.com",
    "GIT_CONFIG_NOSYSTEM": "1",
    "LC_ALL": "C",
}


def git(cwd: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        text=True,
        env=ENV,
        check=False,
    )
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)} failed: {done.stderr}")
    return done.stdout.strip()


def git_ok(cwd: Path, *args: str) -> bool:
    done = subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, env=ENV)
    return done.returncode == 0


def write(root: Path, files: Mapping[str, str]) -> None:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)


def make_repo(path: Path, files: Mapping[str, str] | None = None) -> Path:
    """A repository on ``main`` with one commit holding ``files``."""
    path.mkdir(parents=True, exist_ok=True)
    git(path, "init", "-q", "-b", "main")
    write(path, files or {"README.md": "hello\n", "src/app.py": "print('app')\n"})
    git(path, "add", "-A")
    git(path, "commit", "-q", "-m", "initial")
    return path


def commit_on_main(repo: Path, files: Mapping[str, str], message: str = "on main") -> str:
    write(repo, files)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", message)
    return git(repo, "rev-parse", "HEAD")


def branches(repo: Path, prefix: str = "council/") -> set[str]:
    out = git(repo, "for-each-ref", "--format=%(refname:short)", f"refs/heads/{prefix}")
    return set(out.splitlines())


def registered_paths(repo: Path) -> set[Path]:
    out = git(repo, "worktree", "list", "--porcelain")
    return {
        Path(line[len("worktree ") :]) for line in out.splitlines() if line.startswith("worktree ")
    }
