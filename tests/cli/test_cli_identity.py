"""The user's git identity reaches every CLI (issue 11, defect 1), read with real git."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from orchestrator.runner.identity import FALLBACK, identity_env, read_identity


@pytest.fixture
def user_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A user with no git config anywhere (no system file, an empty HOME)."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    for name in ("GIT_CONFIG_GLOBAL", "GIT_CONFIG_COUNT", "GIT_AUTHOR_NAME", "GIT_AUTHOR_EMAIL"):
        monkeypatch.delenv(name, raising=False)
    return home


def _repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    subprocess.run(["git", "init", "-q", str(repo)], check=True)
    return repo


def _git_config(*args: str) -> None:
    subprocess.run(["git", "config", *args], check=True)


def test_the_global_identity_of_the_user_is_read(user_home: Path, tmp_path: Path) -> None:
    _git_config("--global", "user.name", "Ada Lovelace")
    _git_config("--global", "user.email", "ada@example.org")

    identity = read_identity(_repo(tmp_path))

    assert (identity.name, identity.email, identity.from_config) == (
        "Ada Lovelace",
        "ada@example.org",
        True,
    )


def test_the_repository_identity_wins_over_the_global_one(user_home: Path, tmp_path: Path) -> None:
    _git_config("--global", "user.name", "Ada Lovelace")
    _git_config("--global", "user.email", "ada@example.org")
    repo = _repo(tmp_path)
    subprocess.run(["git", "-C", str(repo), "config", "user.email", "ada@work.example"], check=True)
    assert read_identity(repo).email == "ada@work.example"
    assert read_identity(repo).name == "Ada Lovelace"


def test_no_identity_anywhere_gives_the_councils_own(user_home: Path, tmp_path: Path) -> None:
    assert read_identity(_repo(tmp_path)) == FALLBACK


def test_a_missing_repository_gives_the_fallback(user_home: Path, tmp_path: Path) -> None:
    assert read_identity(tmp_path / "nowhere") == FALLBACK


def test_git_inside_the_cli_sees_the_identity_without_any_config_file(
    user_home: Path, tmp_path: Path
) -> None:
    repo = _repo(tmp_path)
    identity = read_identity(repo)
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path / "private"), "GIT_CONFIG_NOSYSTEM": "1"}
    env |= identity_env(identity)

    def ask(key: str) -> str:
        done = subprocess.run(
            ["git", "config", "--get", key], cwd=repo, env=env, capture_output=True, text=True
        )
        return done.stdout.strip()

    # What aider asks before it writes a placeholder identity into the shared config.
    assert ask("user.name") == FALLBACK.name and ask("user.email") == FALLBACK.email
    subprocess.run(
        ["git", "commit", "-q", "--allow-empty", "-m", "x"], cwd=repo, env=env, check=True
    )
    author = subprocess.run(
        ["git", "log", "-1", "--format=%an <%ae>|%cn <%ce>"],
        cwd=repo,
        env=env,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert author == "CLI Council <council@localhost>|CLI Council <council@localhost>"
    assert "[user]" not in (repo / ".git" / "config").read_text()
