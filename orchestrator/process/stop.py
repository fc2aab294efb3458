"""Stopping a process and its whole family: its group, and the members that left it.

SIGTERM to the group and to the family members that left it (``orchestrator.process.tree``:
descendants, and processes carrying a CLI run's mark in their environment, double-forked
``setsid()`` daemons included), a grace period, then SIGKILL, then sweeps for marked processes
started meanwhile.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import time
from collections.abc import Callable

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator.process import ps
from orchestrator.process.started import own_processes
from orchestrator.process.tree import (
    Family,
    Stray,
    adopted_strays,
    describe,
    find_strays,
    reap,
    signal_strays,
)

__all__ = [
    "DEFAULT_GRACE",
    "group_alive",
    "kill_group",
    "reap_group",
    "signal_group",
    "stop_adopted",
    "sweep",
    "swept",
    "terminate",
]

log = logging.getLogger(__name__)

DEFAULT_GRACE = 5.0
_SWEEPS = 3  # passes over the processes for marked ones: a member may fork while we kill
_POLL = 0.02  # seconds between looks at a group whose leader has exited


async def kill_group(
    process: anyio.abc.Process,
    family: Family,
    grace: float = DEFAULT_GRACE,
    *,
    termed: list[Stray] | None = None,
) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL it.

    Members of ``family`` that left the group get the same signals: found before the leader
    can die and orphan them, and once more after it died. ``termed``: the strays a caller
    already found and sent SIGTERM with the group (``terminate``, in a worker-thread call it
    made anyway); else that is this call's first worker-thread call.

    Two worker-thread calls in all: the look for strays with the SIGTERM, and, once the group
    is dead, the reaping of what was killed with the sweep for marked processes started
    meanwhile. Eight CLIs stopped at once share the worker threads; each call more was
    another wait for one.
    """
    pgid = family.pgid  # start_new_session made the child its group's leader
    strays = termed
    if strays is None:
        alive = process.returncode is None
        strays = await anyio.to_thread.run_sync(lambda: terminate(family, leader_alive=alive))
    with anyio.move_on_after(grace) as waited:
        await process.wait()
        # The rest of the group gets the rest of the grace too: a sandbox's wrapper (the
        # group's leader) ends at SIGTERM at once while the CLI inside is still saving.
        while group_alive(pgid):  # noqa: ASYNC110 - nothing tells when a group empties
            await anyio.sleep(_POLL)
    if waited.cancelled_caught:
        log.info("pid %d still running %.1fs after SIGTERM; sending SIGKILL", pgid, grace)
    # Even when the leader exited, a child that ignored SIGTERM may live on in the group.
    signal_group(pgid, signal.SIGKILL)
    await process.wait()
    found = strays

    def killed() -> None:
        """The strays found first SIGKILLed and reaped, then the group's members of ours."""
        signal_strays(found, signal.SIGKILL)
        reap(found)
        reap_group(pgid)

    await sweep(family, first=killed)


def terminate(family: Family, *, leader_alive: bool) -> list[Stray]:
    """The first step of a stop, blocking: the members of ``family`` that left its group
    looked for (``find_strays``; ancestry too while the leader lives), then SIGTERM to the
    group and to them; the strays found, for the SIGKILL that follows the grace."""
    strays = find_strays(family, leader_alive=leader_alive)
    log.debug("pid %d: SIGTERM to its group and %d strays", family.pgid, len(strays))
    signal_group(family.pgid, signal.SIGTERM)
    signal_strays(strays, signal.SIGTERM)
    return strays


def group_alive(pgid: int) -> bool:
    """Whether any member of group ``pgid`` is still running (the ones this process adopted
    and that have exited are waited for first, so a zombie does not count)."""
    with contextlib.suppress(ChildProcessError):
        while os.waitpid(-pgid, os.WNOHANG)[0]:
            pass
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def reap_group(pgid: int, wait: float = 1.0) -> int:
    """Wait for the members of group ``pgid`` that are this process's children, once they
    were sent SIGKILL; how many. Blocking.

    Such a member is one the group's leader left behind and this process adopted as a
    subreaper: a sandbox's own init (``orchestrator.sandbox.bubblewrap``), whose parent exits
    as soon as it hears the CLI's status, is one. Unwaited for, it would stay a zombie and
    look like a process the CLI left running. ``wait`` bounds how long a member that has not
    died yet is waited for."""
    reaped = 0
    deadline = time.monotonic() + wait
    while True:
        try:
            pid, _ = os.waitpid(-pgid, os.WNOHANG)
        except ChildProcessError:
            return reaped  # no child of ours left in that group
        if pid:
            reaped += 1
        elif time.monotonic() >= deadline:
            return reaped
        else:
            time.sleep(0.005)


async def sweep(family: Family, *, first: Callable[[], object] | None = None) -> list[str]:
    """SIGKILL every member of ``family`` still alive outside its group (the leader has
    exited); what they were. ``first`` (blocking) runs before the first look. All of it is
    one worker-thread call (``swept``)."""
    return await anyio.to_thread.run_sync(lambda: swept(family, first=first))


def swept(family: Family, *, first: Callable[[], object] | None = None) -> list[str]:
    """``sweep``, blocking: for a caller that does it in a worker-thread call of its own, with
    the rest of its blocking work (the runner's end of a CLI run: one hop)."""
    if first is not None:
        first()  # the group's own reaping, before the first look
    if family.mark is None and not family.roots:
        return []
    stopped: dict[Stray, str] = {}
    for _ in range(_SWEEPS):
        strays = find_strays(family, leader_alive=False)
        if not strays:
            break
        # One that has already exited (a zombie of ours, adopted, not collected yet) left
        # nothing running: collected below, never reported as a survivor.
        said = {stray: describe(stray) for stray in strays if stray not in stopped}
        stopped.update((stray, text) for stray, text in said.items() if not ps.ended(stray))
        log.info("pid %d: killing %d processes it left behind", family.pgid, len(strays))
        signal_strays(strays, signal.SIGKILL)
        reap(strays)  # dead before the next look
    return list(stopped.values())


async def stop_adopted(since: float) -> list[str]:
    """SIGKILL every process this orchestrator adopted (a CLI's double-forked daemon, where
    it is a subreaper) that was started since ``since`` (``tree.since_now``); what they were.
    For the end of a run, when no CLI runs any more to own them."""
    strays: list[Stray] = await anyio.to_thread.run_sync(adopted_strays, since, own_processes)
    if not strays:
        return []
    stopped = [describe(stray) for stray in strays]
    log.warning("stopping %d processes the run's CLIs left behind: %s", len(strays), stopped)
    signal_strays(strays, signal.SIGKILL)
    await anyio.to_thread.run_sync(reap, strays)
    return stopped


def signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
