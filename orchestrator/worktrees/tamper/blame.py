"""Whose doing a change outside a worktree is: the sessions' windows, and what each is owed.

``TamperGuard`` opens a ``Window`` for every CLI session (its worktree, admin directory and
own branch, from the watch before the CLI starts to the check after it ends) and hands each
check's ``Finding``s to ``Ledger.judge``, which decides, for the session being checked, what
fails it for good, what only sends it round again, and what belongs to another session.

**Reach first.** A session whose CLI runs in a sandbox (``Window.confined``) can write only
its reach: its worktree, its admin directory, its object store and its task's ref directory
(``refs/heads/council/<task>/``, where its own branch lives, with its reflogs). So a change
is only ever suspected of the sessions that could have made it: every unconfined session
(nothing keeps it anywhere), and the confined ones whose reach holds the place
(``Finding.within``: the sessions of the task whose ref namespace a ref is in, the session
whose admin directory was emptied). A confined sibling is never suspected of a ref in another
task's namespace, of git's shared config, of the main checkout. A change no session could
have made (all confined, none reaching it) came from outside the run: it is undone and said
(``Verdict.noted``), and nobody is blamed. Then, among the suspects:

- a finding **traced** to one session (a worktree's HEAD through its admin directory, its own
  ``config.worktree``, its branch) is that session's alone: it is blocked (not retryable) if
  it is the one being checked, else the finding is **owed** to it, handed over at its own
  check, and the session being checked is not blamed. A traced session whose window has
  closed can no longer be told; the finding is then judged by reach as below;
- a finding the checked session could not have made (its sandbox does not reach the place)
  is owed to the suspects still running: blocked at its check when it is the only one,
  rechecked at each one's otherwise;
- a finding made before a session starts (a stranded worktree given back then) is owed to the
  suspects running at that moment, judged as if found at their checks;
- otherwise the change is the doing of one of the suspects whose windows overlapped the
  checked one's. Of those, a session that has ended already is cleared for a change that was
  undone (its own check would have found and undone it, had it come in its window), and so is
  a running one whose watch already saw the change (``cleared``: it started after it). When
  that leaves only the checked session, it is blocked; otherwise no innocent session fails
  for good: each of them is **rechecked** (a retryable failure: the phase runs again, its
  work kept on its branch), the checked one now, the others still running at their own check
  (``owed``), since the change is undone and their own compare would no longer show it.
  Findings that are not undone (the main checkout's files) are seen by every overlapping
  session's own compare, and judged the same way there.

Without a sandbox a ref's name proves nothing (any CLI can write any ref): a ref in a task's
namespace is then suspected of that task's sessions *and* every unconfined one, so it
rechecks rather than blocks. Sessions of one task (best of N) share that ref directory, so
between them blame goes by task, not by session.

A session's own branch, moved by its CLI's commits, is its work and never a finding; another
live session's branch moving is that session's (``own_refs``). Everything here runs on the
event loop's thread, between awaits: no lock is needed.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["Finding", "Ledger", "Verdict", "Window", "namespace_of"]

BESIDE = "undone by the check of a session running beside this one"
OUTSIDE = "no session's sandbox reaches it: made outside this run, nobody of it is blamed"
NAMESPACE = "refs/heads/council/"  # each task's ref directory: refs/heads/council/<task>/


def namespace_of(ref: str | None) -> str | None:
    """The task whose ref directory ``ref`` is in (``refs/heads/council/<task>/...``)."""
    if not ref or not ref.startswith(NAMESPACE):
        return None
    task, slash, _ = ref.removeprefix(NAMESPACE).partition("/")
    return task if slash and task else None


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
    confined: bool = False  # its CLI runs in a sandbox: it writes only its reach (module doc)
    looked: bool = False  # its admin directory, lock and ready mark read (``admin`` and on)

    @property
    def name(self) -> str:
        return self.own.removeprefix("refs/heads/") if self.own else self.worktree.name

    @property
    def task(self) -> str | None:
        """The task whose ref directory its own branch is in."""
        return namespace_of(self.own)

    def could(self, finding: Finding) -> bool:
        """Whether its CLI could have made ``finding``: unconfined, or the place is in its
        reach (traced to it, or among the sessions ``within`` names)."""
        return not self.confined or self.serial in finding.within or self.serial == finding.traced


@dataclass(frozen=True)
class Finding:
    """One change found by a check, for a human; ``traced``: the serial of the session it is
    traced to (None: it cannot be); ``undone``: put back, so other sessions' own compare no
    longer shows it."""

    what: str
    traced: int | None = None
    undone: bool = True
    cleared: frozenset[int] = frozenset()  # sessions whose watch already saw it: not theirs
    # The confined sessions whose reach holds the place (every unconfined one could too).
    within: frozenset[int] = frozenset()


@dataclass(frozen=True)
class Verdict:
    blocked: tuple[str, ...] = ()  # this session's doing: it fails for good
    rechecked: tuple[str, ...] = ()  # one of several sessions' doing: it runs again
    noted: tuple[str, ...] = ()  # nobody's of the run (no sandbox reaches it): said, undone


class Ledger:
    """The windows of the sessions running, and of those that ended while another ran."""

    def __init__(self) -> None:
        self._windows: dict[int, Window] = {}
        self._owed: defaultdict[int, list[tuple[str, bool]]] = defaultdict(list)
        # Held by every change of ``_windows`` (on the event loop) and by ``overlapping``, which
        # a check reads in its worker thread too (``TamperGuard.finish``): never for longer
        # than a pass over the windows.
        self._guard = threading.Lock()

    def open(self, window: Window) -> None:
        with self._guard:
            self._windows[window.serial] = window

    def live(self) -> list[Window]:
        return [w for w in self._windows.values() if w.ended is None]

    def overlapping(self, window: Window) -> list[Window]:
        """The windows open at some moment of ``window`` (itself included); from any thread."""
        with self._guard:
            windows = list(self._windows.values())
        return [w for w in windows if w.ended is None or w.ended >= window.started]

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

    def in_namespace(self, task: str, window: Window) -> frozenset[int]:
        """The overlapping sessions of ``task``: their reach holds its ref directory."""
        return frozenset(w.serial for w in self.overlapping(window) if w.task == task)

    def judge(self, window: Window, findings: list[Finding]) -> Verdict:
        """What ``findings`` (and what is owed to it) mean for ``window``'s session, which
        ends here (module doc)."""
        overlapping = self.overlapping(window)
        live = [w for w in overlapping if w.ended is None]
        blocked: list[str] = []
        rechecked: list[str] = []
        noted: list[str] = []
        for finding in findings:
            traced = self._windows.get(finding.traced) if finding.traced is not None else None
            if traced is window:
                blocked.append(finding.what)
                continue
            if traced is not None and traced.ended is None:
                self._owed[traced.serial].append((f"{finding.what} ({BESIDE})", True))
                continue
            # An undone change was made after every ended session's own check (which would
            # have found and undone it) or before its watch: the running ones are suspects.
            # One not undone (the main checkout's files) is judged by every overlapping one.
            pool = live if finding.undone else overlapping
            suspects = [
                w
                for w in pool
                if w.could(finding) and (w is window or w.serial not in finding.cleared)
            ]
            if window not in suspects:
                if not suspects:
                    noted.append(f"{finding.what} ({OUTSIDE})")
                elif finding.undone:  # the compare of those running would no longer show it
                    self._owe(finding.what, [w for w in suspects if w.ended is None])
                continue
            if len(suspects) == 1:
                blocked.append(finding.what)
                continue
            line = _untraceable(finding.what, suspects)
            rechecked.append(line)
            if finding.undone:
                for other in suspects:
                    if other is not window and other.ended is None:
                        self._owed[other.serial].append((f"{line} ({BESIDE})", False))
        for line, traced_here in self._owed.pop(window.serial, []):
            (blocked if traced_here else rechecked).append(line)
        self.close(window)
        return Verdict(tuple(blocked), tuple(rechecked), tuple(noted))

    def notice(self, findings: list[Finding]) -> list[str]:
        """``findings`` made outside any session's check (before a session starts): owed to
        the sessions running now that could have made them; those no running session could
        have made are returned, to be said (nobody is blamed)."""
        noted = []
        for finding in findings:
            # A window whose watch has not looked yet: its CLI has not started.
            suspects = [w for w in self.live() if w.looked and w.could(finding)]
            if not suspects:
                noted.append(f"{finding.what} ({OUTSIDE})")
            self._owe(finding.what, suspects)
        return noted

    def _owe(self, what: str, suspects: list[Window]) -> None:
        """Hand ``what`` to the running ``suspects``' own checks: blocked when it is one."""
        if len(suspects) == 1:
            self._owed[suspects[0].serial].append((f"{what} ({BESIDE})", True))
            return
        line = f"{_untraceable(what, suspects)} ({BESIDE})"
        for window in suspects:
            self._owed[window.serial].append((line, False))

    def close(self, window: Window) -> None:
        """``window``'s session has ended; windows nobody's check can overlap any more go."""
        window.ended = time.monotonic()
        self._owed.pop(window.serial, None)
        live = self.live()
        oldest = min((w.started for w in live), default=None)
        with self._guard:
            for serial, other in list(self._windows.items()):
                if other.ended is not None and (oldest is None or other.ended < oldest):
                    del self._windows[serial]


def _untraceable(what: str, suspects: list[Window]) -> str:
    names = ", ".join(sorted(w.name for w in suspects))
    return f"{what} (not traceable to one session: {names} ran then, each is checked again)"
