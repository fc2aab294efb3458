"""Process identity: which process holds something, in a form that survives pid reuse.

A ``ProcessId`` is the pid, the host name and the process's start time, so a new process that
happens to get the pid of a dead holder is not mistaken for it. On Linux the start is the boot
id plus the start tick (the kernel's clock ticks since boot, as psutil reads them), which no
step of the wall clock moves and no reboot repeats; elsewhere it is psutil's wall-clock start
to the hundredth of a second (no boot id to ask), which a step of the system clock can move: a
live holder is then taken for gone. ``is_alive`` answers only for the local host; a holder on
another host is reported as unknown (None) and callers must treat it as alive.

``marker()`` is the same identity as one string, put in the environment of every process the
orchestrator starts (``MARKER_ENV``; children inherit it): after the orchestrator died, its
orphans are found by it (``orchestrator.runner.orphans``, through ``marker_of``) even when
nothing else about them was recorded in time.
"""

from __future__ import annotations

import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil

from orchestrator.process import ps

__all__ = [
    "MARKER_ENV",
    "Living",
    "ProcessId",
    "current",
    "is_alive",
    "living",
    "marker_of",
    "pid_namespace",
    "start_time",
]

MARKER_ENV = "COUNCIL_ORCHESTRATOR"


try:  # Linux's id of this boot: a start tick is only unique within one boot
    _BOOT_ID = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
except OSError:
    _BOOT_ID = ""  # not Linux: psutil's wall-clock start is the identity
_TICKS = os.sysconf("SC_CLK_TCK")
_EXEC_RETRIES, _EXEC_PAUSE = 20, 0.0025  # up to 50 ms for an exec to set up its environment


@dataclass(frozen=True, slots=True)
class ProcessId:
    pid: int
    host: str
    started: str  # "" where the platform cannot tell

    def as_dict(self) -> dict[str, Any]:
        return {"pid": self.pid, "host": self.host, "started": self.started}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ProcessId | None:
        """The identity stored in ``data``, or None when it holds none (or a damaged one)."""
        pid, host, started = data.get("pid"), data.get("host"), data.get("started", "")
        if not isinstance(pid, int) or not isinstance(host, str) or not isinstance(started, str):
            return None
        return cls(pid, host, started)

    def marker(self) -> str:
        """``<host>:<pid>:<started>``; ``parse_marker`` reads it back."""
        return f"{self.host}:{self.pid}:{self.started}"

    @classmethod
    def parse_marker(cls, text: str) -> ProcessId | None:
        host, _, rest = text.partition(":")
        pid, _, started = rest.partition(":")
        return cls(int(pid), host, started) if host and pid.isdigit() else None


_current: ProcessId | None = None


def current() -> ProcessId:
    """This process's identity (recomputed after a fork, since the pid changes)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = ProcessId(pid, socket.gethostname(), start_time(pid) or "")
    return _current


def is_alive(proc: ProcessId) -> bool | None:
    """True or False for a process of this host; None when it runs on another host."""
    me = current()
    if proc.host != me.host:
        return None
    if proc.pid == me.pid:
        return proc.started == me.started
    now = ps.process(proc.pid)
    if now is None or ps.ended(now):
        return False  # a zombie has closed its files and released its locks: it is gone
    started = _started(now)
    if started is None or not proc.started:
        return True  # it exists, and what it is cannot be told: taken for the holder
    return started == proc.started


def pid_namespace() -> str:
    """This process's pid namespace (``pid:[4026531836]`` on Linux), "" where it cannot be
    told: two processes of one host see each other's pids only when theirs agree, so only then
    is ``is_alive``'s "gone" about the same process (a container with the same host name and a
    namespace of its own sees none of this host's pids)."""
    try:
        return os.readlink("/proc/self/ns/pid")
    except OSError:
        return ""


def start_time(pid: int) -> str | None:
    """The start of process ``pid`` as ``ProcessId.started`` holds it, or None when there is no
    such process (or it is a zombie, or its start cannot be read)."""
    proc = ps.process(pid)
    return None if proc is None or ps.ended(proc) else _started(proc)


def marker_of(pid: int) -> str | None:
    """The ``MARKER_ENV`` in the environment of process ``pid`` (who started it), or None
    without one, or when its environment is not ours to read. Blocking (it may wait up to
    50 ms for a process in the middle of exec): call it from a worker thread."""
    proc = ps.process(pid)
    if proc is None:
        return None
    environ = ps.ask(proc.environ, {})
    # A process in the middle of exec shows an empty environment: its parent already saw the
    # exec succeed (the close-on-exec pipe closes early in execve) before the kernel set up the
    # new one. A process with truly no environment costs this short wait, nothing more.
    for _ in range(_EXEC_RETRIES):
        if environ or ps.ended(proc):
            break
        time.sleep(_EXEC_PAUSE)
        environ = ps.ask(proc.environ, {})
    return environ.get(MARKER_ENV)


@dataclass(frozen=True, slots=True)
class Living:
    """A running process as ``living`` lists it."""

    pgid: int
    started: str  # as ``start_time`` gives it


def living() -> dict[int, Living]:
    """Every process of this host that is not a zombie (and whose start can be read), by pid.
    Blocking."""
    table: dict[int, Living] = {}
    for proc in ps.identified():
        group, started = ps.group(proc), _started(proc)
        if group is not None and started is not None and not ps.ended(proc):
            table[proc.pid] = Living(group, started)
    return table


def _started(proc: psutil.Process) -> str | None:
    if _BOOT_ID:
        start = ps.started(proc)
        return None if start is None else f"{_BOOT_ID}:{round(start * _TICKS)}"
    created = ps.ask(proc.create_time, None)
    return None if created is None else f"{created:.2f}"
