"""The processes this orchestrator started and has not yet waited for, and the CLIs running now.

What is started here is never taken for a CLI's stray; a double-forked daemon the orchestrator
adopted while one CLI ran alone is that CLI's (``orchestrator.process.tree``, adoption).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from orchestrator.process.tree import since_now

__all__ = [
    "alone_since",
    "cli_ended",
    "cli_started",
    "forget",
    "own_processes",
    "started",
    "starting",
]

_STARTED: set[int] = set()  # started here, not yet waited for
_RUNNING_CLIS: dict[int, float] = {}  # the CLIs running now, with their start (``since_now``)
_last_cli_end = 0.0
_spawning = 0  # starts under way: a child may exist whose pid is not in _STARTED yet


def own_processes() -> frozenset[int] | None:
    """The processes started here and still running; None while a start is under way (then
    no child of ours can be told from an adopted one)."""
    return None if _spawning else frozenset(_STARTED)


@contextlib.contextmanager
def starting() -> Iterator[None]:
    """Around a start: until it is over, a child may exist whose pid is not known yet."""
    global _spawning
    _spawning += 1
    try:
        yield
    finally:
        _spawning -= 1


def started(pid: int) -> None:
    _STARTED.add(pid)


def forget(pid: int) -> None:
    """``pid`` was waited for."""
    _STARTED.discard(pid)


def alone_since(pid: int) -> float | None:
    """Since when (seconds since boot) the CLI ``pid`` has been the only one running; None
    while others run."""
    # Asked from a worker thread (a stray sweep) while the event loop's thread starts and ends
    # CLIs: the copy is one step of the interpreter, iterating the dict itself is not.
    running = tuple(_RUNNING_CLIS)
    if any(other != pid for other in running):
        return None
    return max(_RUNNING_CLIS.get(pid, 0), _last_cli_end)


def cli_started(pid: int, since: float) -> None:
    _STARTED.add(pid)
    _RUNNING_CLIS[pid] = since


def cli_ended(pid: int) -> None:
    global _last_cli_end
    _STARTED.discard(pid)
    if _RUNNING_CLIS.pop(pid, None) is not None:
        _last_cli_end = since_now()
