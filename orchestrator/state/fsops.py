"""The file operations the state store is built on, behind one narrow object.

Every durable write goes through a ``FileOps`` so tests can put a fault-injecting one in its
place (ENOSPC on write, EIO on fsync, a crash between replace and the directory fsync) and check
that the previous state survives.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable
from pathlib import Path

from orchestrator.crashpoints import crash_point

__all__ = ["FileOps", "durable_write"]


class FileOps:
    """Plain POSIX file operations; subclass and override to inject faults."""

    def open_new(self, path: Path) -> int:
        return os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o644)

    def write(self, fd: int, data: bytes) -> None:
        view = memoryview(data)
        while view:
            written = os.write(fd, view)
            view = view[written:]

    def fsync(self, fd: int) -> None:
        os.fsync(fd)

    def close(self, fd: int) -> None:
        os.close(fd)

    def replace(self, src: Path, dst: Path) -> None:
        os.replace(src, dst)

    def link(self, src: Path, dst: Path) -> None:
        os.link(src, dst)

    def fsync_dir(self, directory: Path) -> None:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def durable_write(
    path: Path,
    data: bytes,
    ops: FileOps,
    *,
    before_replace: Callable[[], None] | None = None,
    sync: bool = True,
) -> None:
    """Write ``data`` to ``path`` so that a crash leaves either the old file or the new one.

    Temp file in the same directory → write → fsync → ``os.replace`` → fsync the directory.
    ``before_replace`` runs once the new bytes are durable and the old file is still in place
    (the record store links the old version into its history there). ``sync=False`` keeps
    the atomic replace but skips both fsyncs: for records that describe live processes (lock
    owners), which a machine crash makes moot anyway.
    On any failure the temp file is removed and the old file is untouched; the OSError
    propagates for the caller to name.
    """
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}.tmp")
    fd = ops.open_new(tmp)
    try:
        try:
            ops.write(fd, data)
            crash_point("write.temp_written")
            if sync:
                ops.fsync(fd)
                crash_point("write.fsynced")
        finally:
            ops.close(fd)
        if before_replace is not None:
            before_replace()
        ops.replace(tmp, path)
        crash_point("write.replaced")
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    if sync:
        ops.fsync_dir(path.parent)
