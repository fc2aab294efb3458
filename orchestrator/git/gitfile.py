"""A linked worktree's ``.git`` file: where its admin directory in the repository's git dir is.
A CLI can rewrite this file, so whoever writes there checks the answer stays under git's
common directory."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["read_gitfile"]

_MOST = 16 + 4096  # "gitdir: ", a path of PATH_MAX, its line's end


def read_gitfile(worktree: Path) -> Path | None:
    """The admin directory a linked worktree's ``.git`` file points at (blocking)."""
    # Plain strings until the answer: read several times in every task's life.
    place = os.fspath(worktree)
    # A CLI may put anything there: a FIFO (an open for reading waits for a writer), a link to
    # /dev/zero (a read without end), a file of gigabytes. Read as git writes it only: a
    # regular file, not through a link, at most what a ``gitdir:`` line can hold.
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
    try:
        fd = os.open(os.path.join(place, ".git"), flags)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None  # none, or a link
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        raw = os.read(fd, _MOST + 1)
    finally:
        os.close(fd)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return None
    if len(raw) > _MOST:
        return None
    if not text.startswith("gitdir: "):
        return None
    target = text.removeprefix("gitdir: ").strip()
    return Path(os.path.normpath(os.path.join(place, target)))
