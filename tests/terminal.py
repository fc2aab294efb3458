"""``council`` as a person sees it: a real process in a pseudo-terminal of a chosen width
(``COLUMNS`` and the terminal's own size agree), its output with the terminal's control
sequences taken out; and as a pipe sees it."""

from __future__ import annotations

import fcntl
import os
import pty
import re
import select
import struct
import subprocess
import termios
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from cli_process_helpers import COUNCIL, ENV

__all__ = ["Shown", "in_terminal", "piped"]

_CONTROL = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b\][^\x07]*\x07")


@dataclass(frozen=True)
class Shown:
    returncode: int
    text: str  # in a terminal: stdout and stderr as they appeared; piped: stdout
    stderr: str = ""

    @property
    def lines(self) -> list[str]:
        return self.text.splitlines()


def in_terminal(
    *args: object,
    cwd: Path,
    columns: int,
    env: Mapping[str, str] | None = None,
    timeout: float = 60,
) -> Shown:
    """Run ``council ARGS`` in a ``columns``-wide terminal, to the end."""
    master, slave = pty.openpty()
    fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 50, columns, 0, 0))
    environ = {**(env or ENV), "COLUMNS": str(columns), "TERM": "xterm-256color", "NO_COLOR": "1"}
    environ.pop("LINES", None)
    process = subprocess.Popen(
        [*COUNCIL, *map(str, args)],
        cwd=cwd,
        stdin=slave,
        stdout=slave,
        stderr=slave,
        env=environ,
        close_fds=True,
    )
    os.close(slave)
    output = bytearray()
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            ready, _, _ = select.select([master], [], [], 0.2)
            if ready:
                try:
                    chunk = os.read(master, 65536)
                except OSError:  # EIO: every end of the terminal is closed
                    break
                if not chunk:
                    break
                output += chunk
            elif process.poll() is not None:
                break
        else:
            process.kill()
            raise TimeoutError(f"council {args} did not end in {timeout}s")
    finally:
        os.close(master)
        process.wait(timeout=30)
    text = _CONTROL.sub("", output.decode(errors="replace")).replace("\r\n", "\n")
    return Shown(process.returncode, text)


def piped(
    *args: object, cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 60
) -> Shown:
    """Run ``council ARGS`` with stdout and stderr pipes (and COLUMNS=80, as CI often has)."""
    done = subprocess.run(
        [*COUNCIL, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**(env or ENV), "COLUMNS": "80"},
        timeout=timeout,
    )
    return Shown(done.returncode, done.stdout, done.stderr)
