"""Watching a started CLI to its end: its output pumped, its limits kept, its family stopped.

``idle_timeout`` (seconds without a byte of output), ``total_timeout``, a ``cancel`` event (the
task's) or a ``halt`` event (this call's alone: the spend meter's, ``spend.meter``) stop the CLI
gracefully (``orchestrator.process.stop.kill_group``); so does an event that settles the
run (``Stop("settled")``); a CLI that had exited by the time a stop came is not stopped,
its own end stands. After a normal exit the group and every marked process are killed
too, so daemons the CLI forked die with it; the reader is given a short drain for output from
escaped children, never more. The family's members that left its group are then the caller's
to sweep (``process.stop.swept``): it does so in the worker-thread call that ends the run, before
anything says the CLI is gone.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from dataclasses import dataclass

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator.process import ps
from orchestrator.process.stop import kill_group, signal_group, terminate
from orchestrator.process.tree import Family, Stray
from orchestrator.runner.reader import OutputReader

__all__ = ["DRAIN", "Limits", "Stop", "supervise"]

DRAIN = 1.0  # after the CLI exited: how long output may still arrive from escaped children


@dataclass(frozen=True)
class Limits:
    idle: float | None
    total: float | None
    grace: float
    cancel: anyio.Event | None
    halt: anyio.Event | None = None  # this call alone stopped, as ``cancel`` stops it


class Stop:
    """Why the run is being stopped early, and the scope waiting on the CLI to exit."""

    def __init__(self) -> None:
        self.reason: str | None = None
        self.scope: anyio.CancelScope | None = None

    def __call__(self, reason: str) -> None:
        if self.reason is None and self.scope is not None:
            self.reason = reason
            self.scope.cancel()


async def supervise(
    process: anyio.abc.Process,
    family: Family,
    fds: tuple[int, int],
    stdin: str | None,
    reader: OutputReader,
    stop: Stop,
    started: float,
    limits: Limits,
) -> bool:
    """Run the CLI to its end; whether it ended on its own, its group killed but the members
    of its family outside the group yet to be swept (``process.stop.swept``: the caller's, in
    the worker-thread call that ends the run). A CLI stopped here is swept already."""
    to_sweep = False
    async with anyio.create_task_group() as tasks:
        tasks.start_soon(reader.pump, fds[0], "stdout")
        tasks.start_soon(reader.pump, fds[1], "stderr")
        if stdin is not None:
            tasks.start_soon(_feed, process, stdin)
        deadline = started + limits.total if limits.total is not None else math.inf
        with anyio.CancelScope(deadline=deadline) as waiting:
            stop.scope = waiting
            if limits.idle is not None:
                tasks.start_soon(_watch_idle, reader, limits.idle, stop)
            for event in (limits.cancel, limits.halt):
                if event is not None:
                    tasks.start_soon(_watch_cancel, event, stop)
            await process.wait()
        termed = await _terminated(process, family) if waiting.cancelled_caught else None
        if termed is not None:
            if stop.reason is None:
                stop.reason = "timeout"
            await kill_group(process, family, limits.grace, termed=termed)
        else:
            stop.reason = None
            stop.scope = None  # a watchdog waking now must not mark a finished run
            signal_group(process.pid, signal.SIGKILL)  # daemons it forked die with it
            to_sweep = True
        with anyio.move_on_after(DRAIN):
            await reader.finished.wait()
        tasks.cancel_scope.cancel()
    return to_sweep


async def _terminated(process: anyio.abc.Process, family: Family) -> list[Stray] | None:
    """The stop's first step (``process.stop.terminate``: SIGTERM to the group and to the
    members that left it, the latter returned), unless the CLI exited before the stop could
    reach it (None): a stop and its exit came together (a workstation resumed after a pause,
    a timeout at its last line). Its end is then its own: its result stands, never
    "cancelled" work for a phase to run again on top of. The process table is read in a
    worker thread (``/proc`` is files: none is read on the event loop), and the signals are
    sent in that same call: one hop, not two, before the CLI hears of the stop."""
    if process.returncode is not None:
        return None

    def unless_gone() -> list[Stray] | None:
        return None if _gone(process.pid) else terminate(family, leader_alive=True)

    return await anyio.to_thread.run_sync(unless_gone)


def _gone(pid: int) -> bool:
    found = ps.process(pid)
    return found is None or ps.ended(found)


async def _feed(process: anyio.abc.Process, text: str) -> None:
    assert process.stdin is not None
    try:
        await process.stdin.send(text.encode("utf-8"))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError):
        pass  # the CLI exited or closed stdin without reading it all: its choice
    finally:
        with contextlib.suppress(Exception):
            await process.stdin.aclose()


async def _watch_idle(reader: OutputReader, idle_timeout: float, stop: Stop) -> None:
    while True:
        remaining = reader.last_output + idle_timeout - time.monotonic()
        if remaining <= 0:
            stop("idle")
            return
        await anyio.sleep(remaining)


async def _watch_cancel(cancel: anyio.Event, stop: Stop) -> None:
    await cancel.wait()
    stop("cancelled")
