"""The machine's processes through psutil, where a process ending mid-read is normal.

``ask`` turns what a read of a process that exits (``NoSuchProcess``), turns zombie
(``ZombieProcess``) or is not ours to look at (``AccessDenied``) raises into a default, so a
scan of the whole machine never fails on one process.

Start times are in seconds since boot (``boot_clock``). On Linux psutil gives a start as boot
time plus the kernel's start tick, and taking the boot time away leaves the tick exactly, which
no step of the wall clock moves. Elsewhere (macOS, the BSDs) the kernel keeps a wall-clock
start, which a step of the system clock (not NTP's slewing) shifts against ``boot_clock``.
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
    "descendants",
    "ended",
    "group",
    "identified",
    "others",
    "process",
    "started",
    "working_dirs",
]

T = TypeVar("T")
D = TypeVar("D")

_GONE = (psutil.Error, OSError)  # OSError: os.getpgid's ProcessLookupError, PermissionError


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


def descendants(pid: int, *, leader_only: bool = False) -> list[psutil.Process] | None:
    """Every living descendant of ``pid``, each identified afresh, found from the kernel's list
    of each thread's children (``/proc/<pid>/task/<tid>/children``, Linux 3.5+): a walk of
    ``pid``'s own tree, whatever else the machine runs (psutil's ``children`` reads every
    process of the machine to find them). None where the kernel keeps no such list.

    ``leader_only``: of ``pid`` itself, only the children of its main thread, which are those
    it started from that thread and every orphan reparented to it as a subreaper (the kernel
    hands orphans to the first living thread of the reaper, its main one). Deeper down every
    thread's children are read: a CLI may start processes from any of its threads."""
    if not _children_files():
        return None
    found: list[psutil.Process] = []
    waiting = _children_of(pid, leader_only=leader_only)
    seen = {pid}
    while waiting:
        child = waiting.pop()
        if child in seen:
            continue
        seen.add(child)
        proc = process(child)
        if proc is not None:
            found.append(proc)
            waiting.extend(_children_of(child))
    return found


def _children_of(pid: int, *, leader_only: bool = False) -> list[int]:
    children: list[int] = []
    try:
        threads = [str(pid)] if leader_only else os.listdir(f"/proc/{pid}/task")
    except OSError:
        return children  # it ended
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children", "rb") as listed:
                children.extend(int(word) for word in listed.read().split())
        except OSError:
            continue  # the thread ended
    return children


@functools.cache
def _children_files() -> bool:
    return os.path.exists(f"/proc/self/task/{os.getpid()}/children")


def others() -> Iterator[psutil.Process]:
    """Every process of the machine but this one, from psutil's table (``process_iter``), which
    reads only the processes it has not seen before: several times cheaper than ``identified``,
    but a pid reused since it was seen keeps its old identity there. For what a process does
    now (its working directory, open files, command line, read when asked), never its start."""
    me = os.getpid()
    return (proc for proc in ask(psutil.process_iter, iter(())) if proc.pid not in (0, me))


def working_dirs() -> Iterator[tuple[int, str]]:
    """Every process of the machine but this one with its working directory ("" where it
    cannot be read: ended, a zombie, not ours). On Linux read from ``/proc`` directly: a
    look at every process per worktree removal, where psutil's table would read each
    process's start (to tell a reused pid) besides, which a working directory does not need."""
    me = os.getpid()
    if not _proc_cwds():
        for proc in others():
            yield proc.pid, ask(proc.cwd, "")
        return
    for name in ask(lambda: os.listdir("/proc"), []):
        if not name.isdigit() or int(name) in (0, me):
            continue
        try:
            cwd = os.readlink(f"/proc/{name}/cwd").split("\0")[0]
        except OSError:
            cwd = ""  # ended, a zombie, or another user's
        if cwd.endswith(" (deleted)") and not os.path.exists(cwd):
            cwd = cwd.removesuffix(" (deleted)")  # as psutil reads it
        yield int(name), cwd


@functools.cache
def _proc_cwds() -> bool:
    return os.path.islink(f"/proc/{os.getpid()}/cwd")


def started(proc: psutil.Process) -> float | None:
    """When ``proc`` started, in seconds since boot; None when it ended or cannot be read."""
    return ask(lambda: _started(proc), None)


@functools.lru_cache(maxsize=512)  # the processes of a few scans, not every one ever seen
def _started(proc: psutil.Process) -> float:
    # Cached by identity (psutil hashes a process by pid and start): reading the boot time
    # is most of what this costs on Linux. A failed read raises, so it is not cached.
    return float(proc.create_time() - psutil.boot_time())


def group(proc: psutil.Process) -> int | None:
    """The process group of ``proc``; None when it ended."""
    return ask(lambda: os.getpgid(proc.pid), None)


def ended(proc: psutil.Process) -> bool:
    """``proc`` has exited: it is gone, or a zombie waiting to be collected by its parent (it
    holds no files and runs no code)."""
    status = ask(proc.status, psutil.STATUS_DEAD)
    return status in (psutil.STATUS_ZOMBIE, psutil.STATUS_DEAD)
