"""A read of a file a CLI can write (its worktree's admin directory: ``HEAD``, ``index``; its
branch's ref and reflog) that neither waits nor follows nor runs on.

A CLI that owns a file can put something else in its place: a FIFO, where an open for reading
waits for a writer that never comes (the orchestrator's worker thread, and whatever waits on
it, stopped for good); a link to ``/dev/zero``, a read without end; a file of gigabytes.
``read_regular`` opens without following a link and without waiting (``O_NONBLOCK``), reads
only a regular file, and at most ``most + 1`` bytes (one more than the caller takes, so a file
too long is told from one that fits).
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

__all__ = ["read_regular"]

_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def read_regular(path: Path | str, most: int) -> bytes | None:
    """At most ``most + 1`` bytes of the regular file at ``path``; None when there is none
    there, or something else (a link, a FIFO, a device, a socket, a directory). Other errors
    (``PermissionError``...) are raised."""
    try:
        fd = os.open(path, _FLAGS)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            return None
        raise
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        chunks, left = [], most + 1
        while left > 0:
            chunk = os.read(fd, min(left, 1 << 16))
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)
