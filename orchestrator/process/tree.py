"""A CLI's whole family of processes, found through ``/proc`` (Linux), so none outlives it.

Each CLI runs as the leader of its own process group, and killing the group takes down
everything it started, except a descendant that called ``setsid()``/``setpgid()`` (a daemon
launcher, a language server): it is in another group and escapes ``killpg``. Two ways find
such strays, and the runner uses both:

- **ancestry**: while the CLI is alive, its descendants are found by walking parent links.
  This misses a daemon that was double-forked (its parent exited, so init adopted it) and
  everything once the CLI itself has exited;
- **a mark**: the runner puts ``COUNCIL_RUN_MARK=<random>`` in the CLI's environment, which
  every descendant inherits, daemons included. A process started since the CLI (its start
  time, in clock ticks since boot, is in ``/proc/<pid>/stat``) whose ``/proc/<pid>/environ``
  holds the mark is one of the family, whoever its parent is now. Only processes started after
  the CLI are read, so the cost is one ``stat`` read per process plus a few ``environ`` reads:
  about 3 ms for 75 processes, in a worker thread.

- **where it works**: a process started since the CLI, with no controlling terminal, outside
  the orchestrator's own process group, whose working directory or any open file is inside
  the CLI's worktree or private HOME (``Family.roots``) belongs to it, whatever its
  environment: a daemon that dropped the mark (``env -i``) but still works in the worktree;
- **adoption**: where the orchestrator made itself a child subreaper (``become_subreaper``,
  done by the ``council`` command), a double-forked daemon is reparented to the orchestrator,
  not to init, when its parent exits. A process whose parent is the orchestrator, outside the
  orchestrator's group and not a process it started (``Family.own``), that was started since
  the CLI and while no other CLI was running (``Family.alone_since``), is this CLI's. Those
  another CLI may own are found when the run ends (``adopted_strays``). Killed adopted strays
  are reaped by ``reap``: their exit status is nobody else's to wait for.

Limits: a descendant that replaced its environment, left the worktree and its HOME, and was
started while several CLIs ran, is only found by adoption at the end of the run, and only
under the ``council`` command (a Python program using the API decides for itself whether to
call ``become_subreaper``). Without ``/proc`` this module finds nothing, and only the process
group is killed.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import secrets
import signal
import sys
import time
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass, field

__all__ = [
    "MARK_NAME",
    "Family",
    "Stray",
    "adopted_strays",
    "become_subreaper",
    "describe",
    "find_strays",
    "now_ticks",
    "reap",
    "signal_strays",
]

MARK_NAME = "COUNCIL_RUN_MARK"
Stray = tuple[int, int]  # (pid, start time in clock ticks): the pair survives pid reuse checks
_TICKS = os.sysconf("SC_CLK_TCK")
_PR_SET_CHILD_SUBREAPER = 36


@dataclass(frozen=True)
class Family:
    """One started CLI: its group (its pid), the mark in its environment, when it started."""

    pgid: int
    mark: str | None = None
    since: int = 0  # clock ticks since boot, taken just before the start
    roots: tuple[str, ...] = ()  # where it works: its worktree, its private HOME
    # The processes the orchestrator started itself (never a stray), asked when looking;
    # None while it cannot tell (a start under way): then nothing is taken for adopted.
    own: Callable[[], Collection[int] | None] = field(default=lambda: None, compare=False)
    # When the CLI began to be the only one running (ticks), or None while others run:
    # an adopted orphan started since then can only be its.
    alone_since: Callable[[], int | None] = field(default=lambda: None, compare=False)

    @staticmethod
    def new_mark() -> tuple[str, int]:
        """A fresh mark, and the time (in clock ticks since boot) to look for it from."""
        return secrets.token_hex(8), now_ticks()


def now_ticks() -> int:
    """Now, in the clock ticks since boot that /proc gives start times in."""
    # One tick early: /proc rounds start times down, and reading early costs nothing.
    return int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS) - 1


def find_strays(family: Family, *, leader_alive: bool) -> list[Stray]:
    """Living members of ``family`` outside its process group. Blocking (reads /proc).

    Ancestry is only walked while the leader is alive; the mark is looked for either way.
    """
    table = _table()
    group = family.pgid
    found: dict[int, int] = {}
    if leader_alive:
        children: dict[int, list[int]] = {}
        for child, (parent, _group, _start) in table.items():
            children.setdefault(parent, []).append(child)
        pending = list(children.get(group, ()))
        while pending:
            current = pending.pop()
            _parent, its_group, start = table[current]
            if its_group != group:
                found[current] = start
            pending.extend(children.get(current, ()))
    me, my_group = os.getpid(), os.getpgrp()
    later = {
        pid: (parent, start)
        for pid, (parent, its_group, start) in table.items()
        if start >= family.since and its_group not in (group, my_group) and pid != me
    }
    if family.mark is not None:
        needle = f"{MARK_NAME}={family.mark}\0".encode()
        found.update((pid, start) for pid, (_, start) in later.items() if _has_mark(pid, needle))
    if family.roots:
        roots = tuple(os.path.realpath(root) + "/" for root in family.roots)
        found.update(
            (pid, start)
            for pid, (_, start) in later.items()
            if pid not in found and _works_in(pid, roots)
        )
    alone = family.alone_since()
    own = family.own() if alone is not None else None
    if alone is not None and own is not None:
        found.update(
            (pid, start)
            for pid, (parent, start) in later.items()
            if parent == me and pid not in own and start >= max(alone, family.since)
        )
    return list(found.items())


def adopted_strays(since: int, own: Callable[[], Collection[int] | None]) -> list[Stray]:
    """Living processes the orchestrator adopted (it is their parent but did not start them)
    that were started since ``since``: the CLIs' double-forked daemons, at the end of a run.
    ``own`` is asked after /proc was read (module doc of ``Family.own``)."""
    table = _table()
    started_here = own()
    if started_here is None:
        return []
    me, my_group = os.getpid(), os.getpgrp()
    return [
        (pid, start)
        for pid, (parent, group, start) in table.items()
        if parent == me and group != my_group and pid not in started_here and start >= since
    ]


def become_subreaper() -> bool:
    """Make this process the one orphaned descendants are reparented to (Linux
    ``PR_SET_CHILD_SUBREAPER``), so a double-forked daemon of a CLI stays findable; False
    where that is not possible."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def reap(strays: Sequence[Stray], wait: float = 1.0) -> None:
    """Wait (up to ``wait`` seconds) until killed strays are dead, collecting the exit status
    of those that are this process's children (adopted): nothing else waits for them, and
    unreaped they would stay as zombies. Blocking."""
    left = list(strays)
    deadline = time.monotonic() + wait
    while left and time.monotonic() < deadline:
        for stray in list(left):
            pid, start = stray
            stat = _stat(pid)
            if stat is None or stat[2] != start:
                left.remove(stray)  # gone (a new process may have its pid: not ours to touch)
            elif stat[0] == os.getpid():
                with contextlib.suppress(ChildProcessError):
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        left.remove(stray)
            elif _zombie(pid):
                left.remove(stray)  # dead; its own parent collects it
        if left:
            time.sleep(0.01)


def _zombie(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return True
    return raw[raw.rfind(b")") + 2 :][:1] in (b"Z", b"X")


def describe(stray: Stray) -> str:
    """``pid 123: command line`` of a stray, for reports."""
    pid = stray[0]
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as handle:
            command = handle.read().replace(b"\0", b" ").decode("utf-8", "replace").strip()
    except OSError:
        command = "?"
    return f"pid {pid}: {command[:200]}"


def _works_in(pid: int, roots: tuple[str, ...]) -> bool:
    """Is ``pid``, with no controlling terminal (never a person's shell), working inside one
    of ``roots`` (its working directory, or a file it holds open)?"""
    if _tty(pid) != 0:
        return False
    base = f"/proc/{pid}"
    try:
        links = [os.readlink(f"{base}/cwd")]
        links += [os.readlink(f"{base}/fd/{fd}") for fd in os.listdir(f"{base}/fd")]
    except OSError:  # gone, or not ours to look at
        return False
    return any((link + "/").startswith(roots) for link in links)


def _tty(pid: int) -> int | None:
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[4])
    except (IndexError, ValueError):
        return None


def signal_strays(strays: list[Stray], sig: signal.Signals) -> None:
    """Send ``sig`` to each stray that is still the same process (its start time matches)."""
    for pid, start in strays:
        stat = _stat(pid)
        if stat is not None and stat[2] == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


def _has_mark(pid: int, needle: bytes) -> bool:
    try:
        with open(f"/proc/{pid}/environ", "rb") as handle:
            return needle in handle.read()
    except OSError:  # gone, or not ours to read
        return False


def _table() -> dict[int, tuple[int, int, int]]:
    table: dict[int, tuple[int, int, int]] = {}
    try:
        entries = os.listdir("/proc")
    except OSError:
        return table
    for name in entries:
        if name.isdigit():
            stat = _stat(int(name))
            if stat is not None:
                table[int(name)] = stat
    return table


def _stat(pid: int) -> tuple[int, int, int] | None:
    """(parent pid, process group, start time) from /proc/<pid>/stat, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            raw = handle.read()
    except OSError:
        return None
    # The command name is in parentheses and may itself contain spaces or ')'.
    fields = raw[raw.rfind(b")") + 2 :].split()
    try:
        return int(fields[1]), int(fields[2]), int(fields[19])
    except (IndexError, ValueError):
        return None
