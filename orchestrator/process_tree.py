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

Limits: a descendant that replaced its environment (``env -i``, ``execve`` with a fresh one) or
whose ``environ`` this user may not read (a setuid program) carries no visible mark; after
the CLI has exited such a process cannot be told apart from anyone else's. Without ``/proc``
this module finds nothing, and only the process group is killed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from dataclasses import dataclass

__all__ = ["MARK_NAME", "Family", "Stray", "find_strays", "signal_strays"]

MARK_NAME = "COUNCIL_RUN_MARK"
Stray = tuple[int, int]  # (pid, start time in clock ticks): the pair survives pid reuse checks
_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass(frozen=True)
class Family:
    """One started CLI: its group (its pid), the mark in its environment, when it started."""

    pgid: int
    mark: str | None = None
    since: int = 0  # clock ticks since boot, taken just before the start

    @staticmethod
    def new_mark() -> tuple[str, int]:
        """A fresh mark, and the time (in clock ticks since boot) to look for it from."""
        # One tick early: /proc rounds start times down, and reading early costs nothing.
        now = int(time.clock_gettime(time.CLOCK_BOOTTIME) * _TICKS) - 1
        return secrets.token_hex(8), now


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
    if family.mark is not None:
        needle = f"{MARK_NAME}={family.mark}\0".encode()
        me = os.getpid()
        later = [
            (pid, start)
            for pid, (_parent, its_group, start) in table.items()
            if start >= family.since and its_group != group and pid != me and pid not in found
        ]
        found.update((pid, start) for pid, start in later if _has_mark(pid, needle))
    return list(found.items())


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
