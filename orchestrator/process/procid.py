"""Process identity: which process holds something, in a form that survives pid reuse.

A ``ProcessId`` is the pid, the host name and the process's start time (on Linux the boot id
plus the start tick from ``/proc/<pid>/stat``), so a new process that happens to get the pid of
a dead holder is not mistaken for it. ``is_alive`` answers only for the local host; a holder on
another host is reported as unknown (None) and callers must treat it as alive.

``marker()`` is the same identity as one string, put in the environment of every process the
orchestrator starts (``MARKER_ENV``; children inherit it): after the orchestrator died, its
orphans are found by it (``orchestrator.runner.orphans``) even when nothing else about them was
recorded in time.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["MARKER_ENV", "Living", "ProcessId", "current", "is_alive", "living", "start_time"]

MARKER_ENV = "COUNCIL_ORCHESTRATOR"
_BOOT_ID = "/proc/sys/kernel/random/boot_id"


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
    started = start_time(proc.pid)
    if started is not None:
        return started == proc.started
    if proc.started and os.path.exists(_BOOT_ID):
        return False  # /proc works here and has no such pid
    try:
        os.kill(proc.pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, it is just not ours
    return True


def start_time(pid: int) -> str | None:
    """``<boot id>:<start tick>`` of a Linux process, or None when it does not exist (or is a
    zombie, or this is not Linux)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
        with open(_BOOT_ID, "rb") as f:
            boot = f.read().strip().decode()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses, so count from the last ')':
    # the start time is field 22, the 20th field after it.
    fields = stat[stat.rfind(b")") + 2 :].split()
    if len(fields) <= 19 or fields[0] in (b"Z", b"X"):
        return None  # a zombie has closed its files and released its locks: it is gone
    return f"{boot}:{fields[19].decode()}"


@dataclass(frozen=True, slots=True)
class Living:
    """A running process as ``living`` lists it."""

    pgid: int
    started: str  # as ``start_time`` gives it


def living() -> dict[int, Living]:
    """Every process of this host that is not a zombie, by pid; {} without ``/proc``.
    Blocking (reads ``/proc``)."""
    try:
        names = os.listdir("/proc")
        with open(_BOOT_ID, "rb") as f:
            boot = f.read().strip().decode()
    except OSError:
        return {}
    table: dict[int, Living] = {}
    for name in names:
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue  # ended meanwhile
        fields = stat[stat.rfind(b")") + 2 :].split()
        if len(fields) > 19 and fields[0] not in (b"Z", b"X"):
            table[int(name)] = Living(int(fields[2]), f"{boot}:{fields[19].decode()}")
    return table
