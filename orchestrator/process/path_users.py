"""Who is using a path right now: the Linux ``/proc`` checks that keep live work from harm.

Two questions, each answered by reading ``/proc`` (blocking: call these in a worker thread):

- ``processes_inside(dir)``: which processes run with their working directory inside a
  worktree. A session whose CLI (or a server the CLI started) still runs there is not removed,
  because whatever it writes next would land in a deleted directory.
- ``lock_holders(lock, ...)``: is an ``index.lock`` still in use? A process that has the file
  open holds it; so does any running git process working in that checkout (by its working
  directory or a path argument such as ``-C`` or ``--work-tree=``), because git closes the
  lock file while it waits, for example, for a commit message editor.

``move_stale_lock`` moves an ``index.lock`` that nobody holds aside (renamed, never deleted, so
a human can still look at it); a lock someone holds is refused with ``WorkspaceError`` naming
the lock and the pid. Without ``/proc`` nobody can be asked, so nothing is moved. A lock younger
than ``min_age`` is left alone even without a holder: git may be creating it this very moment.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.errors import WorkspaceError

__all__ = ["Holder", "lock_holders", "move_stale_lock", "processes_inside"]

_PROC = Path("/proc")


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
    # and pathlib would cost ten times the readlink itself.
    root = os.path.normpath(directory)
    prefix = root.rstrip("/") + "/"
    proc = str(_PROC)
    found = []
    for pid in _pids():
        try:
            cwd = os.readlink(f"{proc}/{pid}/cwd")
        except OSError:
            continue
        if cwd == root or cwd.startswith(prefix):
            found.append(Holder(pid, _command(pid), f"runs in {cwd}"))
    return found


def lock_holders(lock: Path, places: Sequence[Path], outside: Sequence[Path] = ()) -> list[Holder]:
    """Processes holding ``lock``: having it open, or git running in one of ``places``
    (but not in one of ``outside``, which are other checkouts nested inside them)."""
    target = str(lock)
    found = []
    for pid in _pids():
        if any(link == target for link in _open_files(pid)):
            found.append(Holder(pid, _command(pid), f"has {lock.name} open"))
            continue
        argv = _cmdline(pid)
        if not argv or not _is_git(argv[0]):
            continue
        cwd = _cwd(pid)
        if cwd is not None and _within(cwd, places) and not _within(cwd, outside):
            found.append(Holder(pid, _command(pid), f"is git running in {cwd}"))
            continue
        for arg in argv[1:]:
            value = arg.split("=", 1)[1] if arg.startswith("--") and "=" in arg else arg
            if not os.path.isabs(value):
                continue
            path = Path(os.path.normpath(value))
            if _within(path, places) and not _within(path, outside):
                found.append(Holder(pid, _command(pid), f"is git working on {path}"))
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
    if not (_PROC / "self").exists():
        raise WorkspaceError(
            f"{lock} exists and without /proc it cannot be told whether a git process holds "
            "it; if no git command is running in that checkout, remove it by hand"
        )
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


# --- /proc readers; every one tolerates processes that exit while being read ----------------


def _pids() -> Iterator[int]:
    me = os.getpid()
    try:
        names = os.listdir(_PROC)
    except OSError:
        return
    for name in names:
        if name.isdigit() and int(name) != me:
            yield int(name)


def _cwd(pid: int) -> Path | None:
    try:
        return Path(os.readlink(_PROC / str(pid) / "cwd"))
    except OSError:
        return None


def _cmdline(pid: int) -> list[str]:
    try:
        raw = (_PROC / str(pid) / "cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode("utf-8", "replace") for part in raw.split(b"\0") if part]


def _command(pid: int) -> str:
    argv = _cmdline(pid)
    text = " ".join(argv) if argv else "?"
    return text if len(text) <= 120 else text[:117] + "..."


def _open_files(pid: int) -> Iterator[str]:
    fd_dir = _PROC / str(pid) / "fd"
    try:
        fds = os.listdir(fd_dir)
    except OSError:
        return
    for fd in fds:
        try:
            yield os.readlink(fd_dir / fd)
        except OSError:
            continue


def _is_git(argv0: str) -> bool:
    name = os.path.basename(argv0)
    return name == "git" or name.startswith("git-")


def _within(path: Path, roots: Sequence[Path]) -> bool:
    return any(path == root or root in path.parents for root in roots)
