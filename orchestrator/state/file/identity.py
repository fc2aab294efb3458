"""The mark that tells a file store's data from data written after it was deleted.

A run that finds its session record gone knows its state was deleted. But ``rm -r`` racing
the run's own writes can leave a session record behind, written back by a write that read it
just before the deletion, so the record alone cannot say. The mark (``store-id`` at the root)
is written once, complete (a link of a finished file, so no reader sees half of it), and no
record write ever creates it again: if it is missing or holds another id, the data the store
had was deleted beneath it.
"""

from __future__ import annotations

import contextlib
import os
import uuid
from pathlib import Path

from orchestrator.state.file.fsops import FileOperations

__all__ = ["IDENTITY_FILE", "store_identity"]

IDENTITY_FILE = "store-id"


def store_identity(root: Path, ops: FileOperations) -> str:
    """The id of the data under ``root``, made on the first ask (by whichever process asks
    first: the others read the same id)."""
    path = root / IDENTITY_FILE
    while True:
        found = _read(path)
        if found is not None:
            return found
        ops.makedirs(root)
        mark = uuid.uuid4().hex
        draft = root / f".{IDENTITY_FILE}.{mark}"
        fd = ops.open_new(draft)
        try:
            ops.write(fd, f"{mark}\n".encode())
            ops.fsync(fd)
        finally:
            ops.close(fd)
        try:
            ops.link(draft, path)
        except FileExistsError:
            continue  # another process made it first: read theirs
        finally:
            with contextlib.suppress(OSError):
                ops.unlink(draft)
        return mark


def _read(path: Path) -> str | None:
    """The mark, None when there is none (a damaged mark still names this data)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        return os.read(fd, 256).decode("ascii", "replace").strip()
    finally:
        os.close(fd)
