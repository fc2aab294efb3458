"""Catch file work done on an event loop's thread: the debug aid behind the rule that the
event loop never opens, locks, lists or renames a file (DESIGN.md: the event loop never blocks).

Python raises an audit event (PEP 578) for every such call, whoever makes it: ``open`` (also
``os.open``), ``os.listdir``, ``os.scandir``, ``os.rename`` (and ``os.replace``),
``os.remove`` (and ``os.unlink``), ``os.mkdir``, ``os.rmdir``, ``fcntl.flock``, ``fcntl.lockf``.
While ``watching()`` is active, a hook records each one made on a thread that is running an
asyncio event loop, with the place in the orchestrator's code that led to it. Audit hooks
cannot be removed, so the hook is added once and does nothing outside ``watching()``.

Not counted: a module's first import (the import system reads its files once per process),
``stat`` and friends (no audit event), reads and writes of descriptors already open, and what
the event loop itself must do (starting a process: ``subprocess.Popen`` is not watched).
"""

from __future__ import annotations

import asyncio
import sys
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

__all__ = ["LoopFileCall", "watching"]

WATCHED = frozenset(
    {
        "open",
        "os.listdir",
        "os.scandir",
        "os.rename",
        "os.remove",
        "os.mkdir",
        "os.rmdir",
        "fcntl.flock",
        "fcntl.lockf",
    }
)
_PACKAGE = str(Path(__file__).resolve().parents[1])  # .../orchestrator
_SELF = str(Path(__file__).resolve())


@dataclass(frozen=True)
class LoopFileCall:
    """One watched call made on an event loop's thread."""

    event: str
    target: str  # the path (or descriptor) the call was about
    where: str  # ``file:line function`` of the innermost orchestrator frame, or of the call

    def __str__(self) -> str:
        return f"{self.event}({self.target}) at {self.where}"


_found: list[LoopFileCall] | None = None
_installed = False
_guard = threading.local()


@contextmanager
def watching() -> Iterator[list[LoopFileCall]]:
    """Record every watched call made on an event loop's thread inside the block."""
    global _found, _installed
    if not _installed:
        sys.addaudithook(_hook)
        _installed = True
    found: list[LoopFileCall] = []
    _found = found
    try:
        yield found
    finally:
        _found = None


def _hook(event: str, args: tuple[object, ...]) -> None:
    found = _found
    if found is None or event not in WATCHED or getattr(_guard, "busy", False):
        return
    if asyncio._get_running_loop() is None:  # not a loop's thread (or the loop is not running)
        return
    _guard.busy = True  # what the hook itself does must not come back here
    try:
        where = _where(sys._getframe(1))
        if where is not None:
            found.append(LoopFileCall(event, str(args[0]) if args else "", where))
    finally:
        _guard.busy = False


def _where(frame: FrameType | None) -> str | None:
    """Where the call comes from; None for the import system's own reads."""
    first: str | None = None
    inner: str | None = None
    while frame is not None:
        code = frame.f_code
        if code.co_filename.startswith("<frozen importlib"):
            return None
        place = f"{code.co_filename}:{frame.f_lineno} {code.co_name}"
        first = first or place
        if inner is None and code.co_filename.startswith(_PACKAGE) and code.co_filename != _SELF:
            inner = place.removeprefix(_PACKAGE + "/")
        frame = frame.f_back
    return inner or first or "?"
