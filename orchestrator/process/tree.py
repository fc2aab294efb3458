"""A CLI's whole family of processes, found through psutil (``ps``), so none outlives it.

Each CLI runs as the leader of its own process group, and killing the group takes down
everything it started, except a descendant that called ``setsid()``/``setpgid()`` (a daemon
launcher, a language server): it is in another group and escapes ``killpg``. Four ways find
such strays, and the runner uses them all:

- **ancestry**: while the CLI is alive, its descendants (``children(recursive=True)``). This
  misses a daemon that was double-forked (its parent exited, so init adopted it) and
  everything once the CLI itself has exited;
- **a mark**: the runner puts ``COUNCIL_RUN_MARK=<random>`` in the CLI's environment, which
  every descendant inherits, daemons included. A process started since the CLI whose
  environment holds the mark is one of the family, whoever its parent is now. Only those
  started since the CLI (``Family.since``) are read closely: a scan is one read per process;
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

A stray is a ``psutil.Process``: it compares by pid and start time, and is signalled only while
its pid is still that process's, never a newcomer's that got a dead stray's pid.

Where they are looked for: under a subreaper, a CLI's family lives on only inside the
orchestrator's own process tree (whatever a member's parent died, it is reparented to the
orchestrator), so the look after every CLI's end walks that tree (``ps.descendants``), and costs
the same however many processes the machine runs. Without a subreaper (a program using the API
that did not ask for one, or not Linux) a double-forked daemon goes to init, so every process
of the machine is looked at.

Limits: a descendant that replaced its environment, left the worktree and its HOME, and was
started while several CLIs ran, is only found by adoption at the end of the run, only under
the ``council`` command (a program using the API decides whether to ``become_subreaper``) and
only on Linux (no subreaper elsewhere). On macOS only the user's own processes show their
environment, working directory and open files, which the CLI's family are.
"""

from __future__ import annotations

import contextlib
import os
import secrets
import signal
import time
from collections.abc import Callable, Collection, Iterable, Sequence
from dataclasses import dataclass, field

import psutil

from orchestrator.process import ps
from orchestrator.process.subreaper import become_subreaper, is_subreaper

__all__ = [
    "MARK_NAME",
    "Family",
    "Stray",
    "adopted_strays",
    "become_subreaper",
    "describe",
    "find_strays",
    "reap",
    "signal_strays",
    "since_now",
]

MARK_NAME = "COUNCIL_RUN_MARK"
Stray = psutil.Process
_EARLY = 0.01  # seconds: Linux gives start times rounded down to a clock tick


@dataclass(frozen=True)
class Family:
    """One started CLI: its group (its pid), the mark in its environment, when it started."""

    pgid: int
    mark: str | None = None
    since: float = 0.0  # seconds since boot (``ps.boot_clock``), taken just before the start
    roots: tuple[str, ...] = ()  # where it works: its worktree, its private HOME
    # The processes the orchestrator started itself (never a stray), asked when looking;
    # None while it cannot tell (a start under way): then nothing is taken for adopted.
    own: Callable[[], Collection[int] | None] = field(default=lambda: None, compare=False)
    # Since when (seconds since boot) the CLI has been the only one running, or None while
    # others run: an adopted orphan started since then can only be its.
    alone_since: Callable[[], float | None] = field(default=lambda: None, compare=False)

    @staticmethod
    def new_mark() -> tuple[str, float]:
        """A fresh mark, and the time (seconds since boot) to look for it from."""
        return secrets.token_hex(8), since_now()


def since_now() -> float:
    """Now, as the ``since`` (seconds since boot) from which processes started from now on are
    looked for: a clock tick early, since Linux rounds start times down to one."""
    return ps.boot_clock() - _EARLY


def find_strays(family: Family, *, leader_alive: bool) -> list[Stray]:
    """Living members of ``family`` outside its process group. Blocking.

    Ancestry is only walked while the leader is alive; the rest is looked for either way.
    """
    group = family.pgid
    found: set[Stray] = set()
    # While the leader is alive (not waited for yet), its pid is still the CLI's.
    if leader_alive and (leader := ps.process(group)) is not None:
        descendants = ps.descendants(leader.pid)
        if descendants is None:
            descendants = ps.ask(lambda: leader.children(recursive=True), [])
        found.update(p for p in descendants if ps.group(p) not in (group, None))
    me, my_group = os.getpid(), os.getpgrp()
    later = [  # listed before ``own`` is asked: a process of ours in it is already known then
        (proc, start)
        for proc in _candidates(me)
        if proc.pid != me
        and (start := ps.started(proc)) is not None
        and start >= family.since
        and ps.group(proc) not in (group, my_group, None)
    ]
    if family.mark is not None:
        found.update(p for p, _ in later if _marked(p, family.mark))
    if family.roots:
        roots = tuple(os.path.realpath(root) + "/" for root in family.roots)
        found.update(p for p, _ in later if p not in found and _works_in(p, roots))
    alone = family.alone_since()
    own = family.own() if alone is not None else None
    if alone is not None and own is not None:
        oldest = max(alone, family.since)
        found.update(
            p
            for p, start in later
            if start >= oldest and p.pid not in own and ps.ask(p.ppid, None) == me
        )
    return list(found)


def _candidates(me: int) -> Iterable[Stray]:
    """Where a CLI's family can be: under a subreaper (Linux), every process a CLI left is
    reparented into this process's own tree, so only that tree is walked (``ps.descendants``):
    from the main thread, which starts the CLIs and is handed the orphans (the worker threads
    start git, never a CLI); elsewhere, every process of the machine."""
    if is_subreaper():
        tree = ps.descendants(me, leader_only=True)
        if tree is not None:
            return tree
    return ps.identified()


def adopted_strays(since: float, own: Callable[[], Collection[int] | None]) -> list[Stray]:
    """Living processes the orchestrator adopted (it is their parent but did not start them)
    that were started since ``since`` (seconds since boot): the CLIs' double-forked daemons, at
    the end of a run. ``own`` is asked after the children were listed (``Family.own``)."""
    children = ps.ask(lambda: psutil.Process().children(), [])
    started_here = own()
    if started_here is None:
        return []
    my_group = os.getpgrp()
    return [
        child
        for child in children
        if child.pid not in started_here
        and ps.group(child) not in (my_group, None)
        and (ps.started(child) or -1.0) >= since
    ]


def reap(strays: Sequence[Stray], wait: float = 1.0) -> None:
    """Wait (up to ``wait`` seconds) until killed strays are dead, collecting the exit status
    of those that are this process's children (adopted): nothing else waits for them, and
    unreaped they would stay as zombies. Blocking."""
    left = list(strays)
    deadline = time.monotonic() + wait
    while left:
        left = [stray for stray in left if not _dead(stray)]
        if not left or time.monotonic() >= deadline:
            return
        time.sleep(0.01)


def _dead(stray: Stray) -> bool:
    if not stray.is_running():
        return True  # gone (a new process may have its pid: not ours to touch)
    if ps.ask(stray.ppid, None) != os.getpid():
        return ps.ended(stray)  # a zombie is dead; its own parent collects it
    with contextlib.suppress(ChildProcessError):
        return os.waitpid(stray.pid, os.WNOHANG)[0] == stray.pid
    return False


def describe(stray: Stray) -> str:
    """``pid 123: command line`` of a stray, for reports."""
    command = " ".join(ps.ask(stray.cmdline, ["?"]))
    return f"pid {stray.pid}: {command[:200]}"


def signal_strays(strays: list[Stray], sig: signal.Signals) -> None:
    """Send ``sig`` to each stray that is still the same process (psutil checks its start)."""
    for stray in strays:
        with contextlib.suppress(psutil.Error):
            stray.send_signal(sig)


def _marked(proc: Stray, mark: str) -> bool:
    return ps.ask(proc.environ, {}).get(MARK_NAME) == mark


def _works_in(proc: Stray, roots: tuple[str, ...]) -> bool:
    """Is ``proc``, with no controlling terminal (never a person's shell), working inside one
    of ``roots`` (its working directory, or a file it holds open)?"""
    cwd = ps.ask(proc.cwd, "")
    inside = bool(cwd) and (cwd + "/").startswith(roots)
    inside = inside or any(f.path.startswith(roots) for f in ps.ask(proc.open_files, []))
    return inside and ps.ask(proc.terminal, "?") is None
