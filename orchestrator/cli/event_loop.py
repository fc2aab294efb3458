"""Running a command's async work: ``run(fn, *args)``, what ``anyio.run`` does, with two
differences every command of ``cli/`` gets (a test keeps each of them going through here).

**A Ctrl-C always stops the command.** asyncio's runner meets a SIGINT by cancelling the
loop's main task once, and raises ``KeyboardInterrupt`` only if that cancellation comes back
out. A cancellation delivered that way is edge-triggered: arriving while the task waits in a
shielded scope (a git command in a worker thread, a state write), it was taken for that scope's
own and swallowed, and the command went on to the end as if no key had been pressed (a run
stopped at its first git step ended 0 with every task done). Here a SIGINT that arrives before
the command listens for signals itself (``run``, ``status --watch``) cancels an anyio scope
around the command instead, which stays cancelled: the first checkpoint outside a shield ends
it, and ``KeyboardInterrupt`` is raised from here ("interrupted", exit 130). Once a command
opens its own signal receiver, the signal is its to handle.

**The main task ends holding nothing.** asyncio's runner puts a SIGINT handler holding that
task in place, and on the way out ``signal.getsignal`` tries the handler as a
``signal.Handlers`` member, which formats the ``repr`` of the handler, so of the task, so of
its result: a ``RunReport`` of 1,024 tasks took 50 ms of ``council status`` to print into a
string nobody reads. With this module's handler in place first, asyncio installs none, and the
result is handed out of the loop by a box.

**A Ctrl-C a process was started deaf to stays unheard.** A shell without job control (a
script's ``council run ... &``) starts its background jobs with SIGINT ignored, so that a Ctrl-C
meant for the foreground leaves them running; POSIX asks such a program to keep it ignored, and
Python does at start-up. A command that listens for its stop (``stop_signals``) then hears
SIGTERM only: before, such a run ignored a SIGINT during its first git steps and obeyed one once
its own receiver was open, so whether it stopped depended on when the signal came (a test suite
started as a background job found its stop sweep flaky that way). A plain ``kill`` stops it.
"""

from __future__ import annotations

import signal
import threading
from asyncio import AbstractEventLoop, get_running_loop
from collections.abc import Awaitable, Callable
from types import FrameType
from typing import TypeVar, TypeVarTuple

import anyio

from orchestrator.process.child_watch import watching_children

__all__ = ["run", "stop_signals"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


class _Interrupt:
    """The SIGINT handler for one ``run``: it remembers the signal and cancels the command's
    scope on the loop, once both exist."""

    def __init__(self) -> None:
        self.received = False
        self.loop: AbstractEventLoop | None = None
        self.scope: anyio.CancelScope | None = None

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.received = True
        if self.loop is not None and self.scope is not None:
            self.loop.call_soon_threadsafe(self.scope.cancel)  # safe from a signal handler


def stop_signals() -> tuple[signal.Signals, ...]:
    """The signals a command that listens for its own stop hears: SIGTERM, and SIGINT unless
    the process was started with it ignored (see the module doc)."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        return (signal.SIGTERM,)
    return (signal.SIGINT, signal.SIGTERM)


def run(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """``fn(*args)`` on a new event loop; its result. ``KeyboardInterrupt`` once a SIGINT
    reached this module's handler (see the module doc)."""
    box: list[T] = []
    interrupt = _Interrupt()

    async def main() -> None:
        with watching_children(get_running_loop()), anyio.CancelScope() as scope:
            interrupt.loop, interrupt.scope = get_running_loop(), scope
            if interrupt.received:  # before the loop was there to cancel anything
                scope.cancel()
            box.append(await fn(*args))

    own = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGINT) if own else None
    if own and previous is signal.default_int_handler:
        signal.signal(signal.SIGINT, interrupt)
    try:
        anyio.run(main)
    except (Exception, BaseExceptionGroup) as exc:
        if interrupt.received:  # what the stop left unfinished is not the command's error
            raise KeyboardInterrupt from exc
        raise
    finally:
        if own and signal.getsignal(signal.SIGINT) is interrupt:
            signal.signal(signal.SIGINT, signal.default_int_handler)
    if interrupt.received:
        raise KeyboardInterrupt
    return box[0]
