"""Knowing that a child process ended, without a thread per child.

asyncio on Python 3.11 learns that a process it started ended from a thread of its own per
process (``ThreadedChildWatcher``): a run starts two a task (its CLI, the sandbox's network
helper), each a thread made, started (the event loop waits for it to run) and ended. Linux
tells it through a descriptor instead (``pidfd_open``, 5.3 and later), which the loop
watches with its others; ``watching_children(loop)`` puts that in place for one loop while
it runs (about 200 us of CPU less per process started, quiet loop) and the watcher that was
there back after.

A process started from another thread's loop (a portal, a test's) is watched as before, by
the watcher that was there: a loop's descriptors are only ever touched from its own thread.
On Python 3.12 and later asyncio does this itself where it can, and on a system without
``pidfd_open`` nothing changes: both keep asyncio's own.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import os
import sys
import warnings
from collections.abc import Callable, Iterator
from typing import Any, TypeVarTuple

__all__ = ["watching_children"]

Ts = TypeVarTuple("Ts")


@contextlib.contextmanager
def watching_children(loop: asyncio.AbstractEventLoop) -> Iterator[None]:
    """Children started from ``loop`` (which runs in this thread) are watched by descriptor
    while the block runs (module doc)."""
    if sys.version_info >= (3, 12) or not _pidfd_works():
        yield
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        previous = asyncio.get_child_watcher()
        watcher = _LoopPidfds(loop, previous)
        asyncio.set_child_watcher(watcher)
    try:
        yield
    finally:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            asyncio.set_child_watcher(previous)
        watcher.close()


class _LoopPidfds(asyncio.AbstractChildWatcher):
    """A child started from ``loop`` is watched by its descriptor among the loop's others;
    every other loop's children go to ``fallback``, as they did before this was in place."""

    def __init__(self, loop: asyncio.AbstractEventLoop, fallback: asyncio.AbstractChildWatcher):
        self._loop = loop
        self._fallback = fallback
        self._watched: dict[int, tuple[int, Callable[..., object], tuple[Any, ...]]] = {}

    def __enter__(self) -> _LoopPidfds:
        return self

    def __exit__(self, *exc: object) -> None:
        pass

    def attach_loop(self, loop: asyncio.AbstractEventLoop | None) -> None:
        pass  # made for one loop; ``close`` lets it go

    def add_child_handler(
        self, pid: int, callback: Callable[[int, int, *Ts], object], *args: *Ts
    ) -> None:
        if _running() is not self._loop:
            self._fallback.add_child_handler(pid, callback, *args)
            return
        known = self._watched.pop(pid, None)
        if known is None:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:  # out of descriptors, say: watched as before
                self._fallback.add_child_handler(pid, callback, *args)
                return
            self._loop.add_reader(pidfd, self._ended, pid)
        else:
            pidfd = known[0]
        self._watched[pid] = (pidfd, callback, args)

    def _ended(self, pid: int) -> None:
        pidfd, callback, args = self._watched.pop(pid)
        self._loop.remove_reader(pidfd)
        os.close(pidfd)
        try:
            _, status = os.waitpid(pid, 0)
        except ChildProcessError:  # reaped elsewhere: asyncio's own answer for that
            code = 255
        else:
            code = os.waitstatus_to_exitcode(status)
        callback(pid, code, *args)

    def remove_child_handler(self, pid: int) -> bool:
        known = self._watched.pop(pid, None)
        if known is None:
            return self._fallback.remove_child_handler(pid)
        self._loop.remove_reader(known[0])
        os.close(known[0])
        return True

    def close(self) -> None:
        """Let the loop go; a child still running is handed to ``fallback`` (called on the
        loop, before it ends), which tells the loop when it ends as before."""
        pending = list(self._watched.items())
        self._watched.clear()
        for pid, (pidfd, callback, args) in pending:
            self._loop.remove_reader(pidfd)
            os.close(pidfd)
            self._fallback.add_child_handler(pid, callback, *args)

    def is_active(self) -> bool:
        if _running() is not self._loop:
            return self._fallback.is_active()
        return self._loop.is_running()


def _running() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


@functools.cache
def _pidfd_works() -> bool:
    """Whether this system gives a process's descriptor (asked once per process)."""
    try:
        os.close(os.pidfd_open(os.getpid()))
    except (AttributeError, OSError):
        return False
    return True
