"""The suite's ``council`` processes forked from one that has already imported the command.

Some 2,000 tests start ``python -m orchestrator.cli.app ...`` as a real process, and most of
such a process's CPU is its imports (a one-task run: about 0.8 of 1.1 s). ``install`` (the
suite's conftest) makes ``subprocess.Popen`` hand such a start to a server of this worker
(``zygote_server.py``) that imported every module of the project once and forks a child for
each: a process of its own, with the pid, the standard streams, the directory, the
environment and the command line the test asked for, which signals, kills and stops reach
as they would the real command, and whose exit status ``wait``/``poll``/``communicate``
return. Only the import is shared.

A start goes through ``exec`` as before whenever the fork could differ from it:
anything but a plain list starting with ``[sys.executable, "-m", "orchestrator.cli.app"]``;
a ``preexec_fn``, ``pass_fds``, ``close_fds=False``, a user, group, umask or process group;
a terminal among its standard streams (the interpreter opens those differently); an
environment that differs from the server's in a variable the imports read (``read``) or
one the interpreter reads as it starts (``PYTHON*``, the locale's, ``TZ``); a start from
asyncio (whose child watcher waits for its own children only); a command line longer than
the server's padding (``PADDING``, over which a child writes its own); and every start with
``COUNCIL_TEST_FRESH_PROCESSES=1`` in the suite's environment.
"""

from __future__ import annotations

import array
import json
import os
import select
import socket
import struct
import subprocess
import sys
import threading
from pathlib import Path
from typing import Any

__all__ = ["FRESH_ENV", "install"]

FRESH_ENV = "COUNCIL_TEST_FRESH_PROCESSES"
PREFIX = [sys.executable, "-m", "orchestrator.cli.app"]
SERVER = Path(__file__).with_name("zygote_server.py")
# Read by the interpreter as it starts, before any module: never taken from a fork.
STARTUP_PREFIXES = ("PYTHON", "LC_")
STARTUP_NAMES = frozenset({"LANG", "LANGUAGE", "TZ"})
# The server's command line is padded so that a child's fits in its place (/proc/PID/cmdline).
PADDING = "-" * 16384


class _Server:
    def __init__(self) -> None:
        mine, theirs = socket.socketpair()
        self.base = dict(os.environ)
        self.process = subprocess.Popen(
            [sys.executable, str(SERVER), str(theirs.fileno()), PADDING],
            pass_fds=[theirs.fileno()],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            env=self.base,
            cwd="/",
        )
        theirs.close()
        self.control = mine
        self.lock = threading.Lock()
        line = _read_line(mine)
        told = json.loads(line) if line else {"error": "the server ended"}
        self.read: set[str] | None = None
        if "read" in told:
            self.read = None if told["read"] == "*" else set(told["read"])
        self.error = told.get("error")

    def usable(self) -> bool:
        return self.error is None and self.process.poll() is None

    def takes(self, env: dict[str, str]) -> bool:
        """Is a child with ``env`` what ``exec`` would have made?"""
        if self.read is None:
            return env == self.base
        changed = {k for k in env.keys() | self.base.keys() if env.get(k) != self.base.get(k)}
        return not any(
            k in self.read or k in STARTUP_NAMES or k.startswith(STARTUP_PREFIXES) for k in changed
        )

    def start(
        self, argv: list[str], cwd: str, env: dict[str, str], fds: list[int], new_session: bool
    ) -> tuple[int, socket.socket]:
        theirs, mine = socket.socketpair()
        try:
            header = json.dumps(
                {"argv": argv, "cwd": cwd, "env": env, "new_session": new_session}
            ).encode()
            rights = array.array("i", [*fds, theirs.fileno()])
            with self.lock:
                self.control.sendmsg(
                    [struct.pack("I", len(header))],
                    [(socket.SOL_SOCKET, socket.SCM_RIGHTS, rights.tobytes())],
                )
                self.control.sendall(header)
        finally:
            theirs.close()
        told = _exactly(mine, 9)
        value = struct.unpack("q", told[1:])[0]
        if told[:1] == b"p":
            return int(value), mine
        mine.close()
        if told[:1] == b"e":
            raise OSError(value, os.strerror(value), cwd)
        raise ChildProcessError("the council process ended before it was set up")


_server: _Server | None = None
_server_pid = 0
_starting = threading.Lock()
_original_execute_child = subprocess.Popen._execute_child  # type: ignore[attr-defined]
_original_internal_poll = subprocess.Popen._internal_poll  # type: ignore[attr-defined]
_original_wait = subprocess.Popen._wait  # type: ignore[attr-defined]


def install() -> None:
    """Route this process's plain ``council`` starts through the server (module doc)."""
    if os.environ.get(FRESH_ENV) == "1" or not hasattr(os, "pidfd_open"):
        return
    subprocess.Popen._execute_child = _execute_child  # type: ignore[attr-defined]
    subprocess.Popen._internal_poll = _internal_poll  # type: ignore[attr-defined]
    subprocess.Popen._wait = _wait  # type: ignore[attr-defined]


def _server_for_this_process() -> _Server | None:
    global _server, _server_pid
    with _starting:
        if _server is None or _server_pid != os.getpid():
            _server, _server_pid = _Server(), os.getpid()
        return _server if _server.usable() else None


def _execute_child(
    self: subprocess.Popen[Any],
    args: Any,
    executable: Any,
    preexec_fn: Any,
    close_fds: bool,
    pass_fds: Any,
    cwd: Any,
    env: Any,
    startupinfo: Any,
    creationflags: int,
    shell: bool,
    p2cread: int,
    p2cwrite: int,
    c2pread: int,
    c2pwrite: int,
    errread: int,
    errwrite: int,
    restore_signals: bool,
    gid: Any,
    gids: Any,
    uid: Any,
    umask: int,
    start_new_session: bool,
    process_group: Any = None,
) -> None:
    plain = (
        isinstance(args, list)
        and args[:3] == PREFIX
        and all(isinstance(a, str) for a in args)
        and sum(len(os.fsencode(a)) + 1 for a in args) <= len(PADDING)  # its command line fits
        and executable is None
        and preexec_fn is None
        and close_fds
        and not pass_fds
        and not shell
        and gid is None
        and gids is None
        and uid is None
        and umask < 0
        and process_group in (None, -1)
        and not _from_asyncio()
    )
    streams = [
        p2cread if p2cread != -1 else 0,
        c2pwrite if c2pwrite != -1 else 1,
        errwrite if errwrite != -1 else 2,
    ]
    server = _server_for_this_process() if plain else None
    environment = (
        {os.fsdecode(k): os.fsdecode(v) for k, v in (os.environ if env is None else env).items()}
        if server is not None
        else {}
    )
    if server is None or any(os.isatty(fd) for fd in streams) or not server.takes(environment):
        _original_execute_child(
            self, args, executable, preexec_fn, close_fds, pass_fds, cwd, env, startupinfo,
            creationflags, shell, p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite,
            restore_signals, gid, gids, uid, umask, start_new_session, process_group,
        )  # fmt: skip
        return
    where = os.fsdecode(cwd) if cwd is not None else os.getcwd()
    try:
        pid, status = server.start(args, where, environment, streams, start_new_session)
    finally:
        self._close_pipe_fds(p2cread, p2cwrite, c2pread, c2pwrite, errread, errwrite)  # type: ignore[attr-defined]
    self.pid = pid
    self._child_created = True  # type: ignore[attr-defined]
    self._zygote_status = status  # type: ignore[attr-defined]


def _from_asyncio() -> bool:
    frame = sys._getframe(2)
    for _ in range(6):
        if frame is None:
            return False
        if str(frame.f_globals.get("__name__", "")).startswith("asyncio"):
            return True
        frame = frame.f_back  # type: ignore[assignment]
    return False


def _internal_poll(self: subprocess.Popen[Any], *args: Any, **kwargs: Any) -> int | None:
    status = self.__dict__.get("_zygote_status")
    if status is None:
        return _original_internal_poll(self, *args, **kwargs)  # type: ignore[no-any-return]
    if self.returncode is None:
        told = _status(status, 0)
        if told is not None:
            self._handle_exitstatus(told)  # type: ignore[attr-defined]
    return self.returncode


def _wait(self: subprocess.Popen[Any], timeout: float | None) -> int:
    status = self.__dict__.get("_zygote_status")
    if status is None:
        return _original_wait(self, timeout)  # type: ignore[no-any-return]
    if self.returncode is None:
        told = _status(status, timeout)
        if told is None:
            raise subprocess.TimeoutExpired(self.args, timeout)  # type: ignore[arg-type]
        self._handle_exitstatus(told)  # type: ignore[attr-defined]
    assert self.returncode is not None
    return self.returncode


def _status(status: socket.socket, timeout: float | None) -> int | None:
    """The child's wait status once the server told it; None if not within ``timeout``."""
    poller = select.poll()
    poller.register(status, select.POLLIN)
    if not poller.poll(None if timeout is None else max(0, int(timeout * 1000))):
        return None
    told = _exactly(status, 9)
    status.close()
    return int(struct.unpack("q", told[1:])[0])


def _exactly(sock: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        part = sock.recv(size - len(data))
        if not part:
            raise ChildProcessError("the council process server ended before telling")
        data += part
    return data


def _read_line(sock: socket.socket) -> bytes:
    data = b""
    while not data.endswith(b"\n"):
        part = sock.recv(4096)
        if not part:
            break
        data += part
    return data.strip()
