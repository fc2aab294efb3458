"""Who is using a path right now: the checks that keep live work from harm.

Two questions, each answered by looking at every process of the machine through psutil
(blocking: call these in a worker thread):

- ``processes_inside(dir)``: which processes run with their working directory inside a
  worktree. A session whose CLI (or a server the CLI started) still runs there is not removed,
  because whatever it writes next would land in a deleted directory.
- ``lock_holders(lock, ...)``: is an ``index.lock`` still in use? A process that has the file
  open holds it; so does any running git process working in that checkout (by its working
  directory or a path argument such as ``-C`` or ``--work-tree=``), because git closes the
  lock file while it waits, for example, for a commit message editor.

``move_stale_lock`` moves an ``index.lock`` that nobody holds aside (renamed, never deleted, so
a human can still look at it); a lock someone holds is refused with ``WorkspaceError`` naming
the lock and the pid. A lock younger than ``min_age`` is left alone even without a holder: git
may be creating it this very moment.

Only what may be read is seen: another user's processes keep their working directory and open
files to themselves (on Linux without privileges, on macOS always), so a git run by another
user in the same checkout is not seen.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from orchestrator.errors import WorkspaceError
from orchestrator.process import ps

__all__ = ["Holder", "cwd_of", "lock_holders", "move_stale_lock", "processes_inside"]


@dataclass(frozen=True)
class Holder:
    pid: int
    command: str
    how: str

    def __str__(self) -> str:
        return f"pid {self.pid} ({self.command}) {self.how}"


def processes_inside(directory: Path) -> list[Holder]:
    """Processes (other than this one) whose working directory is inside ``directory``."""
    # Plain strings: this looks at every process on the machine, once per worktree removal,
    # and pathlib would cost more than reading the working directory itself.
    root = os.path.normpath(directory)
    prefix = root.rstrip("/") + "/"
    found = []
    for pid, cwd in ps.working_dirs():
        if cwd == root or cwd.startswith(prefix):
            proc = ps.process(pid)
            command = _command(proc) if proc is not None else "?"
            found.append(Holder(pid, command, f"runs in {cwd}"))
    return found


def cwd_of(pid: int) -> Path | None:
    """The working directory of process ``pid``; None when it is gone or not ours to read."""
    proc = ps.process(pid)
    cwd = ps.ask(proc.cwd, "") if proc is not None else ""
    return Path(cwd) if cwd else None


def lock_holders(lock: Path, places: Sequence[Path], outside: Sequence[Path] = ()) -> list[Holder]:
    """Processes holding ``lock``: having it open, or git running in one of ``places``
    (but not in one of ``outside``, which are other checkouts nested inside them)."""
    target = str(lock)
    found = []
    for proc in ps.others():
        if any(f.path == target for f in ps.ask(proc.open_files, [])):
            found.append(Holder(proc.pid, _command(proc), f"has {lock.name} open"))
            continue
        argv = ps.ask(proc.cmdline, [])
        if not argv or not _is_git(argv[0]):
            continue
        cwd = ps.ask(proc.cwd, "")
        if cwd and _within(Path(cwd), places) and not _within(Path(cwd), outside):
            found.append(Holder(proc.pid, _command(proc), f"is git running in {cwd}"))
            continue
        for arg in argv[1:]:
            value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            if not os.path.isabs(value):
                continue
            path = Path(os.path.normpath(value))
            if _within(path, places) and not _within(path, outside):
                found.append(Holder(proc.pid, _command(proc), f"is git working on {path}"))
                break
    return found


def move_stale_lock(
    lock: Path,
    places: Sequence[Path],
    outside: Sequence[Path] = (),
    *,
    min_age: float = 2.0,
) -> tuple[Literal["absent", "young", "moved"], Path | None]:
    """Move ``lock`` aside when nobody holds it; raise ``WorkspaceError`` when someone does."""
    try:
        stat = lock.stat()
    except FileNotFoundError:
        return "absent", None
    holders = lock_holders(lock, places, outside)
    if holders:
        raise WorkspaceError(
            f"{lock} is in use: {holders[0]}; it is not stale, so it was left in place "
            "(let that process finish or stop it, then start again)"
        )
    if time.time() - stat.st_mtime < min_age:
        return "young", None
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    moved = lock.with_name(f"{lock.name}.stale-{stamp}")
    serial = 1
    while moved.exists():
        serial += 1
        moved = lock.with_name(f"{lock.name}.stale-{stamp}-{serial}")
    try:
        os.rename(lock, moved)
    except FileNotFoundError:
        return "absent", None  # its owner finished (or another cleaner won) meanwhile
    return "moved", moved


def _command(proc: psutil.Process) -> str:
    text = " ".join(ps.ask(proc.cmdline, [])) or "?"
    return text if len(text) <= 120 else text[:117] + "..."


def _is_git(argv0: str) -> bool:
    name = os.path.basename(argv0)
    return name == "git" or name.startswith("git-")


def _within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
