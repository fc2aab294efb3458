"""Rotation of ``events.jsonl``: archives beside it, compressed, trimmed with old sessions.

When the log grows past its size limit it is renamed to ``events.<UTC time>.jsonl`` and the
next append starts a new ``events.jsonl``. It is never truncated or rewritten in place: a
reader tailing it (``council watch``) sees the inode change and opens the new file, and a
writer of another process notices the same within a second (``EventLog``) and reopens.

Because a writer may still append to the renamed file for that second, an archive is
compressed (``events.<UTC time>.jsonl.gz``) only once it has been left alone for
``SETTLE_SECONDS``, by a later rotation or trim. Readers read both kinds, oldest first.

Archives are named by when they were rotated, so every event in one happened before that
time: ``trim_archives(before)`` removes those whose events all predate the oldest session
``council clean`` keeps.

Rotation, compression and trimming run under one lock file (``events.jsonl.rotate.lock``),
never waited for: a process that finds it taken leaves the work to its holder.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import re
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

from orchestrator import filelock
from orchestrator.state.file.fsops import FileOperations

__all__ = [
    "SETTLE_SECONDS",
    "archive_lines",
    "archive_time",
    "archives",
    "rotate",
    "trim_archives",
]

SETTLE_SECONDS = 30.0  # an archive this long untouched can have no late writer left
_STAMP = "%Y%m%dT%H%M%S%fZ"
_CHUNK = 1 << 20


def _pattern(log: Path) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(log.stem)}\.(\d{{8}}T\d{{12}}Z)\.jsonl(\.gz)?$")


def archives(log: Path) -> list[Path]:
    """The log's archives, oldest first (a compressed one and a plain one of the same time
    both listed only while compression is under way: the plain one wins)."""
    pattern = _pattern(log)
    found: dict[str, Path] = {}
    with contextlib.suppress(FileNotFoundError), os.scandir(log.parent) as entries:
        for entry in entries:
            match = pattern.match(entry.name)
            if match is None:
                continue
            stamp = match.group(1)
            if match.group(2) is None or stamp not in found:
                found[stamp] = Path(entry.path)
    return [found[stamp] for stamp in sorted(found)]


def archive_time(archive: Path) -> datetime:
    """When ``archive`` was rotated: every event in it happened before."""
    stamp = archive.name.split(".")[-3 if archive.name.endswith(".gz") else -2]
    return datetime.strptime(stamp, _STAMP).replace(tzinfo=UTC)


def archive_lines(archive: Path) -> Iterator[bytes]:
    """The lines of an archive, plain or compressed (a torn compressed tail ends it)."""
    opener = gzip.open if archive.name.endswith(".gz") else open
    try:
        with opener(archive, "rb") as handle:
            try:
                yield from handle
            except (EOFError, OSError, zlib.error):
                return  # a compression cut short: what was read is all there is
    except FileNotFoundError:
        return  # trimmed or compressed meanwhile


def rotate(log: Path, max_bytes: int, ops: FileOperations) -> Path | None:
    """Rename ``log`` to a new archive when it holds ``max_bytes`` or more; the archive, or
    None when it is smaller or another process is rotating it."""
    lock = filelock.try_acquire(_lock_path(log), root=ops.root_of(log))
    if lock is None:
        return None
    with lock:
        try:
            if log.stat().st_size < max_bytes:
                return None  # someone else rotated it a moment ago
        except FileNotFoundError:
            return None
        archive = log.with_name(f"{log.stem}.{datetime.now(UTC).strftime(_STAMP)}.jsonl")
        ops.replace(log, archive)
        _compress_settled(log, ops)
        return archive


def trim_archives(log: Path, before: datetime | None, ops: FileOperations) -> int:
    """Remove the archives whose events all happened before ``before`` (every archive when
    None); compress the settled ones that stay. How many were removed."""
    lock = filelock.try_acquire(_lock_path(log), root=ops.root_of(log))
    if lock is None:
        return 0
    removed = 0
    with lock:
        for archive in archives(log):
            if before is None or archive_time(archive) < before:
                ops.unlink(archive)
                removed += 1
        _compress_settled(log, ops)
    return removed


def _compress_settled(log: Path, ops: FileOperations) -> None:
    """Compress each plain archive no writer has touched for ``SETTLE_SECONDS``."""
    for archive in archives(log):
        if archive.name.endswith(".gz"):
            continue
        try:
            idle = time.time() - archive.stat().st_mtime
        except FileNotFoundError:
            continue
        if idle >= SETTLE_SECONDS:
            _compress(archive, ops)


def _compress(archive: Path, ops: FileOperations) -> None:
    target = archive.with_name(archive.name + ".gz")
    temp = archive.with_name(archive.name + ".gz.tmp")
    with contextlib.suppress(FileNotFoundError):
        ops.unlink(temp)  # what a compression cut short left
    fd = ops.open_new(temp)
    try:
        packer = zlib.compressobj(wbits=31)  # 31: the gzip format
        with archive.open("rb") as source:
            while chunk := source.read(_CHUNK):
                ops.write(fd, packer.compress(chunk))
        ops.write(fd, packer.flush())
        ops.fsync(fd)
    except BaseException:
        ops.close(fd)
        with contextlib.suppress(OSError):
            ops.unlink(temp)
        raise
    ops.close(fd)
    ops.replace(temp, target)
    ops.unlink(archive)


def _lock_path(log: Path) -> Path:
    return log.with_name(log.name + ".rotate.lock")
