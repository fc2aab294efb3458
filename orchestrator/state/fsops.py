"""The file operations the state store is built on, behind one narrow object.

Every durable write goes through a ``FileOps`` so tests can put a fault-injecting one in its
place (``orchestrator.testing.faulty_fs``: ENOSPC on write, EIO on fsync, a crash between
replace and the directory fsync) and check that the previous state survives. That covers the
records, their history links, quarantine, checkpoints and the event log: nothing of the store
creates, writes, renames or links a file past this object.

``durable_write`` tells its caller how far it got: an ``OSError`` means the old file is still
in place; ``NotSynced`` (an ``OSError`` too) means the new file replaced it but the directory
could not be synced, so every process already sees the new bytes and only a machine crash
could bring the old ones back.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path

from orchestrator.crashpoints import crash_point
from orchestrator.errors import StateWriteError

__all__ = ["FileOps", "NotSynced", "durable_write", "write_error"]


class NotSynced(OSError):
    """The new file is in place, but the fsync of its directory failed."""


class FileOps:
    """Plain POSIX file operations; subclass and override to inject faults."""

    def makedirs(self, directory: Path) -> None:
        os.makedirs(directory, exist_ok=True)

    def open_new(self, path: Path) -> int:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(path, flags, 0o644)

    def open_append(self, path: Path) -> int:
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        return os.open(path, flags, 0o644)

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

    def unlink(self, path: Path) -> None:
        path.unlink(missing_ok=True)

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
    On a failure up to the replace the temp file is removed, the old file is untouched and the
    OSError propagates for the caller to name; a failed directory fsync raises ``NotSynced``.
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
        crash_point("write.replaced", str(path))
    except BaseException:
        # The error that stopped the write is the one to report, not the cleanup's.
        with contextlib.suppress(OSError):
            ops.unlink(tmp)
        raise
    if sync:
        try:
            ops.fsync_dir(path.parent)
        except OSError as exc:
            raise NotSynced(exc.errno, exc.strerror, str(path.parent)) from exc


def write_error(path: Path, exc: OSError, outcome: str) -> StateWriteError:
    """The one error a refused write of ``path`` raises; ``outcome`` says what state it left."""
    reason = exc.strerror or str(exc)
    if isinstance(exc, NotSynced):
        reason += " (syncing its directory)"
    return StateWriteError(path, reason, outcome, exc.errno, applied=isinstance(exc, NotSynced))
