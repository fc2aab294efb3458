"""The guarded files of a repository's git setup, byte for byte: read, compare, put back.

``tamper`` watches git's shared config, hooks and ``info/`` around every CLI session; this is
its file layer (blocking: call it in a worker thread):

- ``FileState.read(path)`` is what a path holds right now: nothing, a regular file (its bytes,
  up to ``CAP``; past that only size, mtime and inode are compared), a symlink (its target)
  or something else;
- ``restore(path, before, now, stamp)`` puts ``before`` back. Nothing is deleted: what the
  CLI left is kept beside it as ``<name>.council-tampered-<stamp>`` (git reads only exact
  names, so a hook or config kept there is inert). The new content is written to
  ``<name>.lock`` (created exclusively, like git's own config writes, so a concurrent
  ``git config`` is never overwritten) and renamed into place, so readers never see the file
  missing or half written;
- ``describe_config(before, now)`` names the settings a config change added or removed
  (``core.hookspath=/x``), for the error a human reads.
"""

from __future__ import annotations

import errno
import os
import stat
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from orchestrator.git.config_text import describe_change
from orchestrator.safety import safe_write

__all__ = ["CAP", "FileState", "describe_config", "restore"]

CAP = 1024 * 1024
ASIDE = ".council-tampered-"

Kind = Literal["absent", "file", "link", "other"]


@dataclass(frozen=True)
class FileState:
    kind: Kind = "absent"
    data: bytes | None = None  # a file's bytes (None past CAP), a link's target
    mode: int = 0
    size: int = 0
    mtime_ns: int = 0
    inode: int = 0

    @classmethod
    def read(cls, path: Path) -> FileState:
        try:
            info = os.lstat(path)
        except (FileNotFoundError, NotADirectoryError):
            return ABSENT
        mode = stat.S_IMODE(info.st_mode)
        if stat.S_ISLNK(info.st_mode):
            return cls("link", os.fsencode(os.readlink(path)), mode)
        if not stat.S_ISREG(info.st_mode):
            return cls("other", None, mode, 0, info.st_mtime_ns, info.st_ino)
        data = None
        if info.st_size <= CAP:
            # Never waiting, never through a link: what lstat saw as a file may be swapped for a
            # FIFO or a link before the open (read as "other" then, as lstat would have).
            flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
            try:
                fd = os.open(path, flags)
            except FileNotFoundError:
                return ABSENT
            except OSError as exc:
                if exc.errno != errno.ELOOP:
                    raise
                return cls("other", None, mode, 0, info.st_mtime_ns, info.st_ino)
            try:
                if not stat.S_ISREG(os.fstat(fd).st_mode):
                    return cls("other", None, mode, 0, info.st_mtime_ns, info.st_ino)
                with os.fdopen(fd, "rb", closefd=False) as handle:
                    data = handle.read(CAP + 1)
            finally:
                os.close(fd)
        return cls("file", data, mode, info.st_size, info.st_mtime_ns, info.st_ino)

    def same(self, other: FileState) -> bool:
        if self.kind != other.kind or self.mode != other.mode:
            return False
        if self.kind == "other":
            return (self.mtime_ns, self.inode) == (other.mtime_ns, other.inode)
        if self.kind == "file" and (self.data is None or other.data is None):
            return (self.size, self.mtime_ns, self.inode) == (
                other.size,
                other.mtime_ns,
                other.inode,
            )
        return self.data == other.data

    @property
    def restorable(self) -> bool:
        return self.kind == "absent" or (self.kind in ("file", "link") and self.data is not None)


ABSENT = FileState()


def restore(root: Path, path: Path, before: FileState, now: FileState, stamp: str) -> str:
    """Put ``before`` back at ``path`` (see the module doc); what was done, for the error.

    Every step works in ``path``'s directory reached from ``root`` (git's common directory)
    without following a link (``safe_write``): a CLI that put a link in place of ``hooks/``
    must not turn the restore into a write wherever the link points (``PathEscapeError``)."""
    if not before.restorable:
        return "left in place (too large or not a file to restore)"
    aside = path.with_name(f"{path.name}{ASIDE}{stamp}")
    kept = f"the changed one kept as {aside.name}"
    if before.kind == "absent":
        safe_write.replace(root, path, aside)  # the CLI's new file, moved out of git's way
        return f"moved aside to {aside.name}"
    if now.kind == "file" and now.data is not None:
        _write_new(root, aside, now.data, now.mode)  # a copy: the original stays readable
    elif now.kind != "absent":
        safe_write.replace(root, path, aside)
    else:
        kept = "it had been deleted"
    lock = path.with_name(path.name + ".lock")
    try:
        if before.kind == "link":
            assert before.data is not None
            _link_new(root, lock, os.fsdecode(before.data))
        else:
            assert before.data is not None
            _write_new(root, lock, before.data, before.mode)
    except FileExistsError:
        return f"not restored: {lock.name} exists (a git command is writing it); {kept}"
    safe_write.replace(root, lock, path)
    return f"restored; {kept}"


def _write_new(root: Path, path: Path, data: bytes, mode: int) -> None:
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
    descriptor = safe_write.open_file(root, path, flags, mode or 0o644)
    try:
        os.write(descriptor, data)
        os.fchmod(descriptor, mode or 0o644)
    finally:
        os.close(descriptor)


def _link_new(root: Path, path: Path, value: str) -> None:
    """A new link at ``path`` (``FileExistsError`` if anything is there: git's own lock)."""
    with safe_write.real_dir(root, path.parent, create=False) as dir_fd:
        os.symlink(value, path.name, dir_fd=dir_fd)


def describe_config(before: FileState, now: FileState) -> str:
    """The settings ``now`` adds to and removes from ``before`` (both git config files)."""
    return describe_change(before.data, now.data)
