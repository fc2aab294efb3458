"""Whose doing a change outside a worktree is: the sessions' windows, and what each is owed.

``TamperGuard`` opens a ``Window`` for every CLI session (its worktree, admin directory and
own branch, from the watch before the CLI starts to the check after it ends) and hands each
check's ``Finding``s to ``Ledger.judge``, which decides, for the session being checked, what
fails it for good, what only sends it round again, and what belongs to another session:

- a finding **traced** to one session (a worktree's HEAD through its admin directory, its own
  ``config.worktree``, its branch) is that session's alone: it is blocked (not retryable) if
  it is the one being checked, else the finding is **owed** to it, handed over at its own
  check, and the session being checked is not blamed. A traced session whose window has
  closed can no longer be told; the finding is then treated as not traceable;
- a finding made before a session starts (a stranded worktree given back then) is owed to the
  sessions running at that moment, judged as if found at their checks;
- a finding that **cannot be traced** (git's shared config or hooks, the base ref, the main
  checkout, a stranded worktree, a new entry beside the worktrees) is the doing of one of the
  sessions whose windows overlapped the checked one's. Of those, a session that has ended
  already is cleared for a change that was undone (its own check would have found and undone
  it, had it come in its window), and so is a running one whose watch already saw the change
  (``cleared``: it started after it). When that leaves only the checked session,
  it is blocked; otherwise no innocent session fails for good: each of them is **rechecked**
  (a retryable failure: the phase runs again, its work kept on its branch), the checked one
  now, the others still running at their own check (``owed``), since the change is undone and
  their own compare would no longer show it. Findings that are not undone (the main
  checkout's files) are seen by every overlapping session's own compare, and judged the same
  way there.

A session's own branch, moved by its CLI's commits, is its work and never a finding; another
live session's branch moving is that session's (``own_refs``). Everything here runs on the
event loop's thread, between awaits: no lock is needed.
"""

from __future__ import annotations

import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "Ledger", "Verdict", "Window"]

BESIDE = "undone by the check of a session running beside this one"


@dataclass
class Window:
    """One CLI session, from the watch before its CLI to the check after it."""

    serial: int
    worktree: Path
    admin: Path | None  # its admin directory (``.git/worktrees/<name>``) at the watch
    own: str | None  # its own branch (a ref)
    lock: str | None = None  # its admin directory's lock reason and ready mark at the watch,
    ready: str | None = None  # to put back if a CLI deletes the directory
    started: float = field(default_factory=time.monotonic)
    ended: float | None = None

    @property
    def name(self) -> str:
        return self.own.removeprefix("refs/heads/") if self.own else self.worktree.name


@dataclass(frozen=True)
class Finding:
    """One change found by a check, for a human; ``traced``: the serial of the session it is
    traced to (None: it cannot be); ``undone``: put back, so other sessions' own compare no
    longer shows it."""

    what: str
    traced: int | None = None
    undone: bool = True
    cleared: frozenset[int] = frozenset()  # sessions whose watch already saw it: not theirs


@dataclass(frozen=True)
class Verdict:
    blocked: tuple[str, ...] = ()  # this session's doing: it fails for good
    rechecked: tuple[str, ...] = ()  # one of several sessions' doing: it runs again


class Ledger:
    """The windows of the sessions running, and of those that ended while another ran."""

    def __init__(self) -> None:
        self._windows: dict[int, Window] = {}
        self._owed: defaultdict[int, list[tuple[str, bool]]] = defaultdict(list)

    def open(self, window: Window) -> None:
        self._windows[window.serial] = window

    def live(self) -> list[Window]:
        return [w for w in self._windows.values() if w.ended is None]

    def overlapping(self, window: Window) -> list[Window]:
        """The windows open at some moment of ``window`` (itself included)."""
        return [w for w in self._windows.values() if w.ended is None or w.ended >= window.started]

    def own_refs(self, window: Window) -> set[str]:
        """The branches of the sessions whose windows overlapped ``window``: theirs to move."""
        return {w.own for w in self.overlapping(window) if w.own}

    def by_admin(self, admin: Path, window: Window) -> Window | None:
        """The overlapping session whose worktree's admin directory is ``admin``."""
        for other in self.overlapping(window):
            if other.admin == admin:
                return other
        return None

    def by_ref(self, ref: str, window: Window) -> Window | None:
        for other in self.overlapping(window):
            if other.own == ref:
                return other
        return None

    def judge(self, window: Window, findings: list[Finding]) -> Verdict:
        """What ``findings`` (and what is owed to it) mean for ``window``'s session, which
        ends here (module doc)."""
        overlapping = self.overlapping(window)
        live = [w for w in overlapping if w.ended is None]
        blocked: list[str] = []
        rechecked: list[str] = []
        for finding in findings:
            # An undone change was made after every ended session's own check (which would
            # have found and undone it) or before its watch: the running ones are suspects.
            # One not undone (the main checkout's files) is judged by every overlapping one.
            pool = live if finding.undone else overlapping
            suspects = [w for w in pool if w is window or w.serial not in finding.cleared]
            traced = self._windows.get(finding.traced) if finding.traced is not None else None
            if traced is window:
                blocked.append(finding.what)
                continue
            if traced is not None and traced.ended is None:
                self._owed[traced.serial].append((f"{finding.what} ({BESIDE})", True))
                continue
            if len(suspects) == 1:
                blocked.append(finding.what)
                continue
            names = ", ".join(sorted(w.name for w in suspects))
            line = (
                f"{finding.what} (not traceable to one session: {names} ran then, each is "
                "checked again)"
            )
            rechecked.append(line)
            if finding.undone:
                for other in suspects:
                    if other is not window and other.ended is None:
                        self._owed[other.serial].append((f"{line} ({BESIDE})", False))
        for line, traced_here in self._owed.pop(window.serial, []):
            (blocked if traced_here else rechecked).append(line)
        self.close(window)
        return Verdict(tuple(blocked), tuple(rechecked))

    def notice(self, findings: list[Finding]) -> None:
        """``findings`` made outside any session's check (before a session starts): owed to
        the sessions running now, the only ones that could have made them."""
        live = self.live()
        for finding in findings:
            if len(live) == 1:
                self._owed[live[0].serial].append((f"{finding.what} ({BESIDE})", True))
                continue
            names = ", ".join(sorted(w.name for w in live))
            line = (
                f"{finding.what} (not traceable to one session: {names} ran then, each is "
                f"checked again) ({BESIDE})"
            )
            for window in live:
                self._owed[window.serial].append((line, False))

    def close(self, window: Window) -> None:
        """``window``'s session has ended; windows nobody's check can overlap any more go."""
        window.ended = time.monotonic()
        self._owed.pop(window.serial, None)
        live = self.live()
        oldest = min((w.started for w in live), default=None)
        for serial, other in list(self._windows.items()):
            if other.ended is not None and (oldest is None or other.ended < oldest):
                del self._windows[serial]
