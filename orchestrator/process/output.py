"""Bounded handling of a CLI's output: lines cut to a cap, a size-capped log, a short tail.

Whatever a CLI prints (a gigabyte, one 50 MB line without a newline, invalid UTF-8), the
orchestrator holds at most ``LINE_CAP`` bytes of any line, writes at most ``LOG_LIMIT`` bytes
of log, and keeps only tails in memory:

- ``LineSplitter`` cuts a byte stream into lines as chunks arrive; of a line longer than the
  cap it keeps the head and counts the rest (never joining the whole line in memory);
- ``LogSink`` writes each (redacted) line to ``<log_dir>/<name>.log`` with its stream, marks cut
  lines, and after ``limit`` bytes writes ``[log truncated]`` once and drops the rest; a disk
  that refuses the log (full, read-only), also when the buffer is flushed at the end, stops
  the logging with one warning naming the file, and the run goes on;
- ``TextTail`` keeps the last lines of a stream (stderr: where a CLI says what went wrong).

Log writes go through a 64 KiB buffer on the event loop: they land in the page cache, and a
worker-thread hop per write would cost more than the write.
"""

from __future__ import annotations

import contextlib
import errno
import itertools
import logging
import os
import re
import shlex
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import IO

from orchestrator.errors import PathEscapeError
from orchestrator.safety import safe_write

__all__ = ["LINE_CAP", "LOG_LIMIT", "LineSplitter", "LogSink", "TextTail", "log_name"]

LINE_CAP = 1024 * 1024
LOG_LIMIT = 50 * 1024 * 1024
LOG_TRUNCATED = "[log truncated]"
log = logging.getLogger(__name__)
_PREFIX = {"stdout": b"stdout| ", "stderr": b"stderr| "}
_UNSAFE = re.compile(r"[^a-z0-9._-]+")
_sequence = itertools.count(1)


class LineSplitter:
    """Turns chunks into ``(line, dropped_bytes)`` pairs; ``line`` holds at most ``cap`` bytes."""

    __slots__ = ("_cap", "_dropped", "_parts", "_size")

    def __init__(self, cap: int = LINE_CAP) -> None:
        self._cap = cap
        self._parts: list[bytes] = []
        self._size = 0
        self._dropped = 0

    def feed(self, chunk: bytes) -> list[tuple[bytes, int]]:
        lines: list[tuple[bytes, int]] = []
        start = 0
        while (end := chunk.find(b"\n", start)) >= 0:
            if not self._parts and not self._dropped and end - start <= self._cap:
                lines.append((chunk[start:end], 0))  # the common case: a whole line in one chunk
            else:
                self._keep(chunk, start, end)
                lines.append(self._take())
            start = end + 1
        if start < len(chunk):
            self._keep(chunk, start, len(chunk))
        return lines

    def finish(self) -> tuple[bytes, int] | None:
        """The last line, if the stream ended without a newline."""
        return self._take() if self._parts or self._dropped else None

    def _keep(self, chunk: bytes, start: int, end: int) -> None:
        room = self._cap - self._size
        size = end - start
        if room > 0:
            part = chunk[start : start + min(size, room)]
            self._parts.append(part)
            self._size += len(part)
        self._dropped += max(0, size - max(room, 0))

    def _take(self) -> tuple[bytes, int]:
        line = b"".join(self._parts)
        dropped = self._dropped
        self._parts, self._size, self._dropped = [], 0, 0
        return line, dropped


def log_name(task_id: str, phase: str) -> str:
    """A file name no other run of any process will pick: task, phase, time, pid, counter."""
    task = _UNSAFE.sub("_", task_id.lower()).strip("._-")[:64] or "cli"
    step = _UNSAFE.sub("_", phase.lower()).strip("._-")[:32] or "run"
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime())
    return f"{task}-{step}-{stamp}-{os.getpid()}-{next(_sequence)}.log"


class LogSink:
    """One run's log file, capped at ``limit`` bytes (plus the truncation marker and footer).

    Nothing touches the disk until ``create``, which the runner calls right after starting the
    CLI, so creating the file overlaps with the CLI's own start-up. It runs on the event loop:
    a create is one metadata operation (about 0.1 ms; a few ms while other processes sync the
    same file system), while a hop to a worker thread costs about 0.3 ms on every run.
    """

    def __init__(
        self,
        path: Path,
        limit: int,
        argv: Sequence[str],
        cwd: Path,
        root: Path | None = None,
        sandbox: str = "",
        notes: Sequence[str] = (),
    ) -> None:
        self.path = path
        # The log is reached from ``root`` (default: its own directory) without following a
        # link on the way or at the file: its name is predictable, and a CLI can write there.
        self.root = path.parent if root is None else root
        self.limit = limit
        self.written = 0
        self.truncated = False
        self.error: str | None = None  # why writing stopped, if the disk refused
        self._argv = argv
        self._cwd = cwd
        self._sandbox = sandbox  # which sandbox the CLI runs in, said on the first line
        self._notes = tuple(notes)  # more header lines: what the run carried into its HOME
        self._file: IO[bytes] | None = None

    def create(self) -> None:
        """Create the file and write its header (once)."""
        if self._file is not None:
            return
        self._file = _open_new(self.root, self.path)
        when = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        sandbox = f" sandbox: {self._sandbox}" if self._sandbox else ""
        header = f"# {when} cwd={self._cwd}{sandbox}\n# argv: {shlex.join(self._argv)}\n"
        header += "".join(f"# {' '.join(note.split())}\n" for note in self._notes)
        self._file.write(header.encode())

    def line(self, stream: str, text: str, dropped: int) -> None:
        if self.truncated:
            return
        if dropped:
            text = f"{text} [line truncated: {dropped} more bytes]"
        data = _PREFIX[stream] + text.encode("utf-8", "replace") + b"\n"
        if self.written + len(data) > self.limit:
            self.truncated = True
            data = f"{LOG_TRUNCATED} after {self.written} bytes\n".encode()
        else:
            self.written += len(data)
        self._append(data)

    def note(self, text: str) -> None:
        """A line of the orchestrator's own in the log (``# text``), not the CLI's."""
        if self.truncated:
            return
        data = f"# {' '.join(text.split())}\n".encode("utf-8", "replace")
        self.written += len(data)
        self._append(data)

    def flush(self) -> None:
        """Put what the buffer holds on disk now: a line saying what the call spent must
        outlive an orchestrator killed before it closes the call's ledger record (its
        successor closes it from this file)."""
        if self._file is None or self._file.closed or self.truncated:
            return
        try:
            self._file.flush()
        except OSError as exc:
            self._refused(exc)

    def _append(self, data: bytes) -> None:
        try:
            self.create()
            assert self._file is not None
            self._file.write(data)
        except OSError as exc:
            # A full disk must not cost the run: stop logging, say so once, carry on.
            self._refused(exc)

    def close(self, footer: str) -> None:
        self.create()
        assert self._file is not None
        if self._file.closed:
            return
        try:
            self._file.write(f"# {footer}\n".encode("utf-8", "replace"))
            self._file.close()  # flushes what the buffer still holds: most of a short run
        except OSError as exc:
            self._refused(exc)
        finally:
            with contextlib.suppress(OSError):
                self._file.close()

    def _refused(self, exc: OSError) -> None:
        self.truncated = True
        if self.error is None:
            self.error = str(exc)
            log.warning("log %s: %s; the rest of this run is not logged", self.path, exc)


class TextTail:
    """The last ``lines`` lines of a stream, each cut to ``width`` characters."""

    __slots__ = ("_lines", "_width")

    def __init__(self, lines: int = 40, width: int = 2000) -> None:
        self._lines: deque[str] = deque(maxlen=lines)
        self._width = width

    def add(self, text: str) -> None:
        self._lines.append(text[: self._width])

    def text(self, limit: int = 8000) -> str:
        return "\n".join(self._lines)[-limit:]


def _open_new(root: Path, path: Path) -> IO[bytes]:
    """The log (its directories made), opened without following a link someone left at its
    (predictable) path or on the way to it."""
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC
    try:
        fd = safe_write.open_file(root, path, flags, make_dirs=True)
    except PathEscapeError as exc:  # refused like a disk refusing the log: named, run goes on
        raise OSError(errno.ELOOP, str(exc), str(path)) from None
    return os.fdopen(fd, "wb", buffering=64 * 1024)
