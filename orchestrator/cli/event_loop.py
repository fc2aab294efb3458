"""Running a command's async work: ``run(fn, *args)``, what ``anyio.run`` does, but the
event loop's main task ends holding nothing.

asyncio's runner puts a SIGINT handler holding that task in place for the run, and on the way
out ``signal.getsignal`` tries the handler as a ``signal.Handlers`` member, which formats the
``repr`` of the handler, so of the task, so of its result: a ``RunReport`` of 1,024 tasks took
50 ms of ``council status`` to print into a string nobody reads. Every command of ``cli/``
goes through here (a test keeps it so).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import TypeVar, TypeVarTuple

import anyio

__all__ = ["run"]

T = TypeVar("T")
Ts = TypeVarTuple("Ts")


def run(fn: Callable[[*Ts], Awaitable[T]], *args: *Ts) -> T:
    """``fn(*args)`` on a new event loop; its result, handed out of the loop by a box."""
    box: list[T] = []

    async def main() -> None:
        box.append(await fn(*args))

    anyio.run(main)
    return box[0]
