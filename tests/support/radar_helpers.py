"""Real repositories and worktrees for the radar's tests and bench: a base with one module of
two functions, and sessions on branches of their own, each in a worktree."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from orchestrator.git.repo import Git
from orchestrator.radar.engine import LiveSession

BASE_MODULE = "".join(
    [
        "def alpha(x):\n",
        "    y = x + 1\n",
        "    return y\n",
        "\n",
        "\n",
        "def beta(x):\n",
        "    y = x * 2\n",
        "    return y\n",
    ]
    + [f"# filler {n}\n" for n in range(20)]
    + [
        "\n",
        "def gamma(x):\n",
        "    return x - 1\n",
    ]
)


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, check=True
    )
    return done.stdout.strip()


def make_repo(root: Path, extra_files: int = 0) -> Path:
    repo = root / "repo"
    repo.mkdir(parents=True)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "config", "user.email", "t@example.com")
    git(repo, "config", "user.name", "T")
    (repo / "src").mkdir()
    (repo / "src" / "mod.py").write_text(BASE_MODULE)
    (repo / "README.md").write_text("readme\n")
    for n in range(extra_files):
        (repo / "src" / f"f{n}.py").write_text("".join(f"line {i}\n" for i in range(30)))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    return repo


@dataclass
class Session:
    live: LiveSession
    repo: Path

    @property
    def path(self) -> Path:
        return self.live.path

    def edit(self, rel: str, old: str, new: str) -> None:
        target = self.path / rel
        text = target.read_text()
        assert old in text, (rel, old)
        target.write_text(text.replace(old, new, 1))

    def write(self, rel: str, text: str) -> None:
        (self.path / rel).parent.mkdir(parents=True, exist_ok=True)
        (self.path / rel).write_text(text)

    def commit(self, message: str = "phase") -> str:
        git(self.path, "add", "-A")
        git(self.path, "commit", "-q", "-m", message)
        return git(self.path, "rev-parse", "HEAD")


def add_session(repo: Path, task: str, session: str) -> Session:
    path = repo.parent / "worktrees" / session
    git(repo, "worktree", "add", "-q", "-b", f"council/{task}/1", str(path), "main")
    fork = git(repo, "rev-parse", "main")
    return Session(LiveSession(session, task, path, fork), repo)


def repo_git(repo: Path) -> Git:
    return Git(repo, repo.parent / "hooks")
