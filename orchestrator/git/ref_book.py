"""The refs the orchestrator itself moved: what tells its own ref writes apart from a CLI's.

A CLI runs beside the orchestrator, which keeps writing shared refs while it runs: the base (each
merge), every session's branch (its commits, its creation and deletion) and the rescue refs under
``refs/council/``. The tamper check (``orchestrator.worktrees.tamper.guard``) reads those refs
before and after a CLI session; a change between the two is the orchestrator's own exactly when this
book holds it.

- ``writing()`` is held around every ref write of the orchestrator together with its
  ``note(ref, old, new)`` (``old``: the value the write replaced, ``None`` when it is not
  known; ``new``: ``None`` for a deletion), and around the tamper check's own reading of the
  refs, so the check never sees a write the book does not hold yet. A threading lock: every
  ref write runs in a worker thread (``Git.run_sync``), and a write holds it only for its
  one git process.
- ``since(ref, started)``: the notes on ``ref`` made after ``started`` (a ``now()`` read
  while holding ``writing``), in the order they were made; ``refs_since(started)`` the refs
  noted after it.

One book per process, for every repository it works on (a note is a ref name and commit
ids: notes of two repositories cannot be mistaken for each other in practice). Another
orchestrator process on the same repository writes refs this book never hears of; the tamper
check would take those for a CLI's (``orchestrator.worktrees.tamper.guard`` lists its limits).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

__all__ = ["RefNote", "complete_since", "note", "now", "refs_since", "since", "writing"]

_KEPT = 4096  # notes remembered; past that a session's check cannot judge (complete_since)


@dataclass(frozen=True)
class RefNote:
    serial: int  # the order notes were made in
    ref: str
    old: str | None  # None: not known (any value may have been replaced)
    new: str | None  # None: deleted


_lock = threading.RLock()
_notes: deque[RefNote] = deque(maxlen=_KEPT)
_last = 0
_forgotten = 0  # the serial of the last note dropped to make room


@contextmanager
def writing() -> Iterator[None]:
    """Held around one ref write and its ``note`` (and the tamper check's reading of refs)."""
    with _lock:
        yield


def note(ref: str, old: str | None, new: str | None) -> None:
    """Record that the orchestrator moved ``ref`` from ``old`` to ``new`` (hold ``writing``)."""
    global _last, _forgotten
    with _lock:
        if len(_notes) == _KEPT:
            _forgotten = _notes[0].serial
        _last += 1
        _notes.append(RefNote(_last, ref, old, new))


def now() -> int:
    """The book's position: the notes made after this call are the ones ``since`` it."""
    with _lock:
        return _last


def complete_since(started: int) -> bool:
    """Whether every note made after ``started`` is still kept."""
    with _lock:
        return _forgotten <= started


def refs_since(started: int) -> set[str]:
    with _lock:
        return {n.ref for n in _notes if n.serial > started}


def since(ref: str, started: int) -> list[RefNote]:
    with _lock:
        return [n for n in _notes if n.ref == ref and n.serial > started]
