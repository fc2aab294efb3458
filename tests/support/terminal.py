"""``council`` as a person sees it: a real process in a pseudo-terminal of a chosen width
(``COLUMNS`` and the terminal's own size agree), its output with the terminal's control
sequences taken out (``in_terminal``), or its screen as it runs, read back through a terminal
emulator (``Terminal``); and as a pipe sees it (``piped``)."""

from __future__ import annotations

import contextlib
import fcntl
import os
import pty
import re
import select
import shlex
import signal
import struct
import subprocess
import sys
import termios
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import pyte

from tests.support.cli_process_helpers import COUNCIL, ENV
from tests.support.timing import patience

__all__ = ["Shown", "Terminal", "in_terminal", "piped", "shell_council"]

_CONTROLLING = (
    "import fcntl, os, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
    "os.execvp(sys.argv[1], sys.argv[1:])"
)
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
    deadline = time.monotonic() + patience(timeout)
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
        process.wait(timeout=patience(30))
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
        timeout=patience(timeout),
    )
    return Shown(done.returncode, done.stdout, done.stderr)


def shell_council(*args: object) -> str:
    """``council ARGS`` as a shell command line."""
    return shlex.join([*COUNCIL, *map(str, args)])


class Terminal:
    """``council`` on a pseudo-terminal of a given size, as it runs, its screen read back
    through a terminal emulator (pyte): what a person at that terminal sees, redraws and all.
    A Ctrl-C here is what a keyboard's does: the terminal echoes ``^C`` where the cursor is,
    and the process gets SIGINT."""

    def __init__(
        self,
        argv: Sequence[object],
        cwd: Path,
        columns: int,
        lines: int = 40,
        *,
        controlling: bool = False,
        command: Sequence[str] | None = None,
    ) -> None:
        """``controlling``: the terminal is council's controlling terminal, council's process
        group its foreground group, as in a shell: a ``^C`` typed (``type``) is turned into
        SIGINT by the terminal itself, for every process of that group. ``command``: run that
        instead of ``council ARGV`` (a shell's pipeline, say; ``shell_council`` names council
        in it)."""
        self.screen = pyte.Screen(columns, lines)
        self._stream = pyte.ByteStream(self.screen)
        self.raw = b""
        env = {**ENV, "COLUMNS": str(columns), "LINES": str(lines), "TERM": "xterm-256color"}
        env.pop("NO_COLOR", None)
        # A new session, the terminal on its three standard streams: not pty.fork, which
        # forks this (threaded) test process itself.
        fd, child = pty.openpty()
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", lines, columns, 0, 0))
        # As a shell does: the session's leader takes the terminal as its controlling one
        # (then the only process group of the session is the terminal's foreground group).
        prefix = [sys.executable, "-c", _CONTROLLING] if controlling else []
        self.process = subprocess.Popen(
            [*prefix, *(command or [*COUNCIL, *map(str, argv)])],
            cwd=cwd,
            env=env,
            stdin=child,
            stdout=child,
            stderr=child,
            start_new_session=True,
        )
        os.close(child)
        self.fd = fd

    def text(self) -> str:
        """The screen now, one line per row, trailing blanks cut."""
        return "\n".join(line.rstrip() for line in self.screen.display)

    def read_until(self, condition: Callable[[str], bool], seconds: float = 30) -> str:
        """Read output until the screen satisfies ``condition`` (or the process ends)."""
        deadline = time.monotonic() + patience(seconds)
        while time.monotonic() < deadline:
            if condition(self.text()):
                return self.text()
            if not self._read(0.05):
                break
        if condition(self.text()):
            return self.text()
        raise AssertionError(f"the screen never showed what was awaited:\n{self.text()}")

    def ctrl_c(self) -> None:
        """Ctrl-C as typed: the terminal discards the output it has not shown yet, echoes
        ``^C`` and only then the process gets SIGINT. The process has no controlling terminal
        here, so the signal is sent once the echo is read: sent at once, what the process
        writes on receiving it could be discarded by the terminal's later flush, which a real
        Ctrl-C never does (its flush comes before the signal)."""
        echoes = self.raw.count(b"^C")
        os.write(self.fd, b"\x03")
        deadline = time.monotonic() + patience(10)
        while self.raw.count(b"^C") == echoes and time.monotonic() < deadline:
            if not self._read(0.05):
                break
        self.process.send_signal(signal.SIGINT)

    def type(self, data: bytes) -> None:
        """Keys typed at the terminal (``b"\\x03"``: Ctrl-C, which the terminal itself turns
        into SIGINT for its foreground process group when it is council's controlling one)."""
        os.write(self.fd, data)

    def foreground_group(self) -> int:
        """The terminal's foreground process group."""
        return os.tcgetpgrp(self.fd)

    def wait(self, seconds: float = 30) -> int:
        """Read to the end; the exit code."""
        deadline = time.monotonic() + patience(seconds)
        while time.monotonic() < deadline and self._read(0.1):
            ended = self.process.poll() is not None
            if ended and not select.select([self.fd], [], [], 0)[0]:
                break  # it ended and everything it wrote is read
        code = self.process.wait(timeout=max(1.0, deadline - time.monotonic()))
        os.close(self.fd)
        return code

    def kill(self) -> None:
        """Make sure the process is gone and waited for (a test's ``finally``)."""
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(timeout=patience(30))
        with contextlib.suppress(OSError):  # wait() closed it already
            os.close(self.fd)

    def _read(self, timeout: float) -> bool:
        """Feed what the process wrote to the emulator; False once it closed the terminal."""
        ready, _, _ = select.select([self.fd], [], [], timeout)
        if not ready:
            return True
        try:
            data = os.read(self.fd, 65536)
        except OSError:  # EIO: every end of the terminal's slave side is closed
            return False
        if not data:
            return False
        self.raw += data
        self._stream.feed(data)
        return True
