"""The machine's processes through psutil, read so that a process ending mid-read is normal.

Every read here answers for a process that may exit (``NoSuchProcess``), turn into a zombie
(``ZombieProcess``) or not be ours to look at (``AccessDenied``) while it is read: ``ask``
turns each of those into a default, so a scan of the whole machine never fails on one process.

Start times are seconds since boot (``boot_clock``), the clock that survives a step of the
wall clock on Linux: there psutil gives a start as boot time plus the kernel's start tick, and
taking the boot time away leaves the tick exactly. Elsewhere (macOS, the BSDs) the kernel keeps
a wall-clock start, which a step of the system clock (NTP's slewing is no step) shifts against
``boot_clock``; a scan straddling such a step may miss or misjudge a process started within the
step. A process's start is read once per identity (pid and start, which psutil compares), since
reading the boot time is most of what it costs on Linux.
"""

from __future__ import annotations

import functools
import os
import time
from collections.abc import Callable, Iterator
from typing import TypeVar

import psutil

__all__ = [
    "ask",
    "boot_clock",
    "ended",
    "group",
    "identified",
    "process",
    "processes",
    "started",
]

T = TypeVar("T")
D = TypeVar("D")

# What a read of a process that is ending, a zombie or not ours raises (ProcessLookupError and
# PermissionError come from os.getpgid).
_GONE = (psutil.Error, OSError)


def ask(read: Callable[[], T], default: D) -> T | D:
    """``read()``, or ``default`` when the process it reads ended or is not ours to read."""
    try:
        return read()
    except _GONE:
        return default


def boot_clock() -> float:
    """Now, in seconds since boot: the clock ``started`` gives start times on."""
    if hasattr(time, "CLOCK_BOOTTIME"):  # Linux: the clock /proc's start ticks count on
        return time.clock_gettime(time.CLOCK_BOOTTIME)
    return time.time() - psutil.boot_time()


def process(pid: int) -> psutil.Process | None:
    """The process ``pid`` now (its identity read now), or None when there is none."""
    return ask(lambda: psutil.Process(pid), None) if pid > 0 else None


def identified() -> Iterator[psutil.Process]:
    """Every process of the machine, each identified afresh (its start read now): a pid seen
    in an earlier scan may be another process by now. Pid 0 is left out: on macOS it is the
    kernel, and for ``os.getpgid`` or ``kill`` it means the caller."""
    for pid in ask(psutil.pids, []):
        found = process(pid)
        if found is not None:
            yield found


def processes() -> Iterator[psutil.Process]:
    """Every process of the machine, from psutil's table (``process_iter``), which reads only
    the processes it has not seen before: several times cheaper than ``identified``, but a pid
    reused since it was seen keeps its old identity there. For what a process does now (its
    working directory, open files, command line, all read when asked), never for its start."""
    for proc in ask(psutil.process_iter, iter(())):
        if proc.pid > 0:
            yield proc


def started(proc: psutil.Process) -> float | None:
    """When ``proc`` started, in seconds since boot; None when it ended or cannot be read."""
    return ask(lambda: _started(proc), None)


@functools.lru_cache(maxsize=8192)
def _started(proc: psutil.Process) -> float:
    # Cached by identity (psutil hashes a process by pid and start): a failed read raises,
    # and is not cached.
    return float(proc.create_time() - psutil.boot_time())


def group(proc: psutil.Process) -> int | None:
    """The process group of ``proc``; None when it ended."""
    return ask(lambda: os.getpgid(proc.pid), None)


def ended(proc: psutil.Process) -> bool:
    """``proc`` has exited: it is gone, or a zombie waiting to be collected by its parent (it
    holds no files and runs no code)."""
    status = ask(proc.status, psutil.STATUS_DEAD)
    return status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
