"""Which errors stop a run, resumable, instead of failing the task they hit: a full file
system, or the orchestrator's own files unusable until someone repairs them."""

from __future__ import annotations

import errno as errno_codes
from collections.abc import Callable

from orchestrator.errors.locks import LockUnusable
from orchestrator.errors.run import OutOfSpace
from orchestrator.errors.state import StateCorrupted, StateWriteError
from orchestrator.errors.workspace import GitError

__all__ = ["needs_repair", "out_of_space", "stops_the_run"]


_FULL_ERRNOS = frozenset({errno_codes.ENOSPC, errno_codes.EDQUOT})
# What git prints when a write runs out of space (its own wording, or strerror's).
_FULL_MESSAGES = ("No space left on device", "Out of diskspace", "Disk quota exceeded")


def needs_repair(error: BaseException) -> bool:
    """Did ``error``, or an error it was raised from, come of the orchestrator's own files
    being unusable: a damaged record, a state write the disk or a planted link refused, a
    lock file nobody holds that cannot be taken? Not the task's fault, and no retry helps
    until someone repairs it (the message says how), so the run stops, resumable, instead of
    failing or requeueing tasks forever. Only what the error was raised *from* counts (not
    an error that was merely being handled when it came)."""
    return _in_chain(error, _unusable, context=False)


def stops_the_run(error: BaseException) -> bool:
    """Is ``error`` one that stops a run (resumable) instead of failing the task it hit?"""
    return out_of_space(error) or needs_repair(error)


def out_of_space(error: BaseException) -> bool:
    """Did ``error``, or an error it was raised from, come of a full file system?"""
    return _in_chain(error, _full, context=True)


def _full(error: BaseException) -> bool:
    if isinstance(error, OutOfSpace):
        return True
    if isinstance(error, OSError | StateWriteError) and error.errno in _FULL_ERRNOS:
        return True
    return isinstance(error, GitError) and any(m in error.stderr for m in _FULL_MESSAGES)


def _unusable(error: BaseException) -> bool:
    return isinstance(error, StateCorrupted | StateWriteError | LockUnusable)


def _in_chain(
    error: BaseException, test: Callable[[BaseException], bool], *, context: bool
) -> bool:
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if test(current):
            return True
        current = current.__cause__ or (current.__context__ if context else None)
    return False
