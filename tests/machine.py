"""A machine of a test's own for ``council init`` and ``council doctor``: a PATH holding only
git and the fake CLIs the test puts there, a HOME of its own (login files go in it), an
environment without the developer's keys, and ``council`` run as a real process on it, piped
or on a real pseudo-terminal of a chosen width."""

from __future__ import annotations

import errno
import fcntl
import os
import pty
import re
import select
import shutil
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Mapping
from pathlib import Path

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
            timeout=timeout,
        )

    def council_on_terminal(
        self, *args: object, cwd: Path, columns: int, timeout: float = 120
    ) -> tuple[int, str]:
        """``council ARGS`` on a pseudo-terminal ``columns`` wide: its exit code and what the
        terminal received (stdout and stderr, escapes removed, ``\\r\\n`` as ``\\n``)."""
        leader, follower = pty.openpty()
        fcntl.ioctl(follower, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
        env = {**self.env(), "COLUMNS": str(columns), "TERM": "xterm-256color"}
        process = subprocess.Popen(
            [*COUNCIL, *map(str, args)],
            cwd=cwd,
            env=env,
            stdin=follower,
            stdout=follower,
            stderr=follower,
        )
        os.close(follower)
        received = bytearray()
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                ready, _, _ = select.select([leader], [], [], 0.5)
                if not ready:
                    if process.poll() is not None:
                        break
                    continue
                try:
                    chunk = os.read(leader, 65536)
                except OSError as exc:  # EIO: every writer closed the terminal
                    if exc.errno != errno.EIO:
                        raise
                    break
                if not chunk:
                    break
                received += chunk
            code = process.wait(timeout=max(deadline - time.monotonic(), 1))
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
            os.close(leader)
        text = _ESCAPES.sub("", received.decode("utf-8", "replace")).replace("\r\n", "\n")
        return code, text


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
