"""The main checkout around a CLI session, as ``git status`` lists it: read, shared, compared.

``TamperGuard`` reads the main checkout's status (tracked changes and untracked files, not
ignored ones), with each listed path's size and mtime, before and after a session whose CLI
could write it: a file created, changed or deleted there is a change outside the worktree.
Reported only: the user's checkout is never modified. Never read while the merge queue
fast-forwards that checkout (``merge.checkout.checkout_lock``): its files change one by one
before HEAD moves, which would look like edits.

``MainStatus.read`` gives a status from a ``git status`` that started after the call;
sessions starting or ending together share one run. ``checkout_changes`` says what differs
between two of them, one line per path.
"""

from __future__ import annotations

import os
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.git.repo import Git
from orchestrator.merge.checkout import checkout_lock

__all__ = ["Listed", "MainStatus", "checkout_changes"]

_STATUS = (
    *("--no-optional-locks", "status", "--porcelain=v1", "-z", "--no-renames"),
    *("--untracked-files=all", "--ignore-submodules=all"),
)

# path -> (status code, size, mtime_ns), size and mtime -1 when gone; None: git status failed
Listed = dict[str, tuple[str, int, int]] | None


class MainStatus:
    """The main checkout's status, one ``git status`` shared by the callers waiting for it."""

    def __init__(self, git: Git) -> None:
        self.git = git  # runs in the main checkout
        self.root = git.cwd
        self._lock = anyio.Lock()
        self._started = 0  # git status runs started, and the last one's number and answer
        self._done: tuple[int, Listed] = (0, None)

    async def read(self) -> Listed:
        """The main checkout's status, from a ``git status`` that started after this call.

        Sessions ending or starting together share one run: any run that starts after a
        caller asked is as good as its own (its CLI has ended, or not yet started, by then).
        """
        asked = self._started
        async with self._lock:
            number, listed = self._done
            if number > asked:
                return listed
            self._started += 1
            number = self._started
            listed = await anyio.to_thread.run_sync(self._now)
            self._done = (number, listed)
            return listed

    def _now(self) -> Listed:
        # Never in the middle of the merge queue's fast-forward of this checkout: its files
        # change one by one before HEAD moves, which would look like someone's edits.
        with checkout_lock(self.root):
            result = self.git.run_sync(*_STATUS, check=False)
        if not result.ok:
            return None
        entries = [entry for entry in result.stdout.split("\0") if len(entry) > 3]
        return _stat_all(self.root, {entry[3:]: entry[:2] for entry in entries})


def checkout_changes(before: Listed, now: Listed) -> list[str]:
    """What differs in the main checkout between two statuses, one line per path."""
    if before is None or now is None:
        return []  # git status failed once: nothing to compare (git said why in its error)
    changes = []
    for path in sorted(before.keys() | now.keys()):
        old, new = before.get(path), now.get(path)
        if old == new:
            continue
        if new is None:
            what = "no longer differs from HEAD (restored or committed)"
        elif new[0] == "??":
            what = "untracked, new" if old is None else "untracked, changed"
        elif new[1] < 0:
            what = "deleted"
        else:
            what = "modified"
        changes.append(f"main checkout {path}: {what}")
    return changes


def _stat_all(root: Path, codes: dict[str, str]) -> dict[str, tuple[str, int, int]]:
    listed: dict[str, tuple[str, int, int]] = {}
    for path, code in codes.items():
        try:
            info = os.lstat(root / path)
            listed[path] = (code, info.st_size, info.st_mtime_ns)
        except OSError:
            listed[path] = (code, -1, -1)
    return listed
