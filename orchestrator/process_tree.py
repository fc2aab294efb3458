"""Descendants of a CLI that left its process group, found through ``/proc`` (Linux).

Each CLI runs as the leader of its own process group, and killing the group takes down
everything it started, except a descendant that called ``setsid()``/``setpgid()`` (a daemon
launcher, a language server): it is in another group and escapes ``killpg``. While the CLI is
still alive such strays can be found by walking parent links in ``/proc``; once the CLI has
exited they are re-parented to init and cannot be told apart from anyone else's processes.
So the runner looks for strays when it *kills* a CLI (timeout, idle, cancellation), not after a
normal exit: a stray that outlives a CLI which exited by itself is not caught (documented in
``orchestrator.process``). Without ``/proc`` this module finds nothing.
"""

from __future__ import annotations

import contextlib
import os
import signal

__all__ = ["Stray", "find_strays", "signal_strays"]

Stray = tuple[int, int]  # (pid, start time in clock ticks): the pair survives pid reuse checks


def find_strays(pid: int) -> list[Stray]:
    """Living descendants of ``pid`` outside process group ``pid``. Blocking (reads /proc)."""
    table = _table()
    children: dict[int, list[int]] = {}
    for child, (parent, _group, _start) in table.items():
        children.setdefault(parent, []).append(child)
    strays: list[Stray] = []
    pending = list(children.get(pid, ()))
    while pending:
        current = pending.pop()
        _parent, group, start = table[current]
        if group != pid:
            strays.append((current, start))
        pending.extend(children.get(current, ()))
    return strays


def signal_strays(strays: list[Stray], sig: signal.Signals) -> None:
    """Send ``sig`` to each stray that is still the same process (its start time matches)."""
    for pid, start in strays:
        stat = _stat(pid)
        if stat is not None and stat[2] == start:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, sig)


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
