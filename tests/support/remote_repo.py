"""A shared bare remote and workstation clones of it, for the remote-mode merge tests."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.git.repo import Git
from tests.support.merge_repo import first_parent_log, git, init_repo


@dataclass(frozen=True)
class Team:
    """``remote`` is a bare repository; ``clone(name)`` makes a workstation's clone of it."""

    root: Path
    remote: Path

    def clone(self, name: str, *, checked_out: bool = False) -> Path:
        path = self.root / name
        git(self.root, "clone", "-q", str(self.remote), str(path))
        git(path, "config", "user.name", "Test User")
        git(path, "config", "user.email", "test@example.com")
        with (path / ".git" / "info" / "exclude").open("a") as exclude:
            exclude.write(".council/\n")
        if not checked_out:
            git(path, "switch", "-q", "--detach")
        return path

    def tip(self, ref: str = "main") -> str:
        return git(self.remote, "rev-parse", f"refs/heads/{ref}")

    def trailers(self, ref: str = "main") -> list[str]:
        """The ``Council-Task`` trailer values on the remote's first-parent history."""
        fmt = "%(trailers:key=Council-Task,valueonly,separator=%x2c)"
        return [t for line in first_parent_log(self.remote, ref, fmt) for t in line.split(",") if t]


def make_team(tmp_path: Path) -> Team:
    seed = init_repo(tmp_path / "seed", checked_out=True)
    remote = tmp_path / "remote.git"
    git(tmp_path, "init", "-q", "--bare", "-b", "main", str(remote))
    git(seed, "push", "-q", str(remote), "main:refs/heads/main")
    return Team(tmp_path, remote)


def plain_git(repo: Path) -> Git:
    return Git(repo, repo / ".council" / "git-hooks")


def write_hook(repo_git_dir: Path, name: str, body: str) -> None:
    hook = repo_git_dir / "hooks" / name
    hook.parent.mkdir(parents=True, exist_ok=True)
    hook.write_text(f"#!/bin/sh\n{body}\n")
    hook.chmod(0o755)
