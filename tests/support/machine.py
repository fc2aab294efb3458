"""A machine of a test's own for ``council init`` and ``council doctor``: a PATH holding only
git and the fake CLIs the test puts there, a HOME of its own (login files go in it), an
environment without the developer's keys, and ``council`` run as a real process on it, piped
or on a real pseudo-terminal of a chosen width."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path

from tests.support.terminal import in_terminal
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
# Colours, cursor moves and the like: what a terminal draws, not what it says.
_ESCAPES = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


class Machine:
    """``root/bin`` is the whole PATH (git linked in), ``root/home`` is HOME."""

    def __init__(self, root: Path) -> None:
        self.bin = root / "bin"
        self.home = root / "home"
        self.bin.mkdir(parents=True)
        self.home.mkdir()
        git = shutil.which("git")
        assert git is not None, "the tests need git"
        (self.bin / "git").symlink_to(git)
        self.extra: dict[str, str] = {}

    def add_cli(self, name: str, version: str, *, version_exit: int = 0) -> Path:
        """A fake CLI ``name`` whose ``--version`` prints ``version``; anything else it is
        asked fails (exit 1), as a CLI that cannot reach its model would."""
        path = self.bin / name
        path.write_text(
            "#!/bin/sh\n"
            f'if [ "$1" = "--version" ]; then echo "{version}"; exit {version_exit}; fi\n'
            'echo "fake cli: no model here" >&2\n'
            "exit 1\n"
        )
        path.chmod(0o755)
        return path

    def add_login(self, relative: str, content: str) -> Path:
        """A login file under HOME (its content is a secret the output must never show)."""
        path = self.home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content)
        return path

    def env(self, **extra: str) -> dict[str, str]:
        """The environment ``council`` runs in: nothing of the developer's but the locale."""
        return {
            "PATH": str(self.bin),
            "HOME": str(self.home),
            "LANG": "C.UTF-8",
            "COUNCIL_DISABLE_PLUGINS": "1",
            "GIT_CONFIG_NOSYSTEM": "1",
            **self.extra,
            **extra,
        }

    def council(
        self, *args: object, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120
    ) -> subprocess.CompletedProcess[str]:
        """``council ARGS`` with its output piped."""
        return subprocess.run(
            [*COUNCIL, *map(str, args)],
            cwd=cwd,
            capture_output=True,
            text=True,
            env={**self.env(), **(env or {})},
            timeout=patience(timeout),
        )

    def council_on_terminal(
        self, *args: object, cwd: Path, columns: int, timeout: float = 120
    ) -> tuple[int, str]:
        """``council ARGS`` on a pseudo-terminal ``columns`` wide: its exit code and what the
        terminal received (stdout and stderr, escapes removed, ``\\r\\n`` as ``\\n``)."""
        shown = in_terminal(*args, cwd=cwd, columns=columns, env=self.env(), timeout=timeout)
        return shown.returncode, shown.text


def new_repo(path: Path, files: Mapping[str, str] | None = None) -> Path:
    """A git repository on ``main`` with one commit, and an identity of its own."""
    path.mkdir(parents=True)
    for name, text in (files or {"README.md": "hello\n"}).items():
        (path / name).parent.mkdir(parents=True, exist_ok=True)
        (path / name).write_text(text)
    for args in (
        ("init", "-q", "-b", "main"),
        ("config", "user.name", "Test User"),
        ("config", "user.email", "test@example.com"),
        ("add", "-A"),
        ("commit", "-q", "-m", "initial"),
    ):
        git(path, *args)
    return path


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args],
        capture_output=True,
        text=True,
        env={**os.environ, "GIT_CONFIG_NOSYSTEM": "1", "LC_ALL": "C"},
        check=False,
    )
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout.strip()
