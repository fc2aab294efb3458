"""Process identity: which process holds something, in a form that survives pid reuse.

A ``ProcessId`` is the pid, the host name and the process's start time (on Linux the boot id
plus the start tick from ``/proc/<pid>/stat``), so a new process that happens to get the pid of
a dead holder is not mistaken for it. ``is_alive`` answers only for the local host; a holder on
another host is reported as unknown (None) and callers must treat it as alive.
"""

from __future__ import annotations

import os
import socket
from dataclasses import dataclass
from typing import Any

__all__ = ["ProcessId", "current", "is_alive"]

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


_current: ProcessId | None = None


def current() -> ProcessId:
    """This process's identity (recomputed after a fork, since the pid changes)."""
    global _current
    pid = os.getpid()
    if _current is None or _current.pid != pid:
        _current = ProcessId(pid, socket.gethostname(), _start_time(pid) or "")
    return _current


def is_alive(proc: ProcessId) -> bool | None:
    """True or False for a process of this host; None when it runs on another host."""
    me = current()
    if proc.host != me.host:
        return None
    if proc.pid == me.pid:
        return proc.started == me.started
    started = _start_time(proc.pid)
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


def _start_time(pid: int) -> str | None:
    """``<boot id>:<start tick>`` of a Linux process, or None when it does not exist."""
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
