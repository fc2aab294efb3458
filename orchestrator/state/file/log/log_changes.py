"""The file backend's ``ChangeSource``: the record writes appended to ``events.jsonl`` by any
process, read from where the source started.

Every write of a record appends its ``state.updated`` (a recovery its ``state.recovered``) to
the log before the write returns (``event_log``), so a change read here is already on disk.
The log is followed by its inode: when the file at the log's path is another one (rotated
away and started afresh, ``event_log``), what the old file still holds past the offset reached
is read first from the descriptor kept open on it, then the new file from its start; the old
one is read a few seconds more, for what writers not yet moved on append to it (a log
rotated twice between two reads, 64 MiB appended meanwhile by default, would hide the middle
file's changes from ``watch``; ``wait_for_update`` reads its record again every few seconds
all the same). A file that
shrank in place (trimmed) is read again from its start. A part of a line is kept until its end
arrives. Waking up is ``LogWake``'s: inotify where it can, a short growing interval elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
import time
from pathlib import Path

import anyio.to_thread

from orchestrator.state.changes import RecordChange, change_of
from orchestrator.state.file.log.log_wake import LogWake

__all__ = ["RETIRED_FOR", "LogChanges", "LogFollower"]

RETIRED_FOR = 3.0  # seconds a log rotated away is still read (its writers move on within 1 s)

_WATCHED = (b'"state.updated"', b'"state.recovered"')
# Where each watched event type keeps the record's new version.
_VERSION: dict[object, str] = {"state.updated": "version", "state.recovered": "new_version"}


class _OpenFile:
    """One log file as read so far: its descriptor, inode, offset and an unfinished line."""

    def __init__(self, fd: int, at_end: bool) -> None:
        st = os.fstat(fd)
        self.fd, self.inode = fd, st.st_ino
        self.offset = st.st_size if at_end else 0
        self.partial = b""

    def read_rest(self) -> list[bytes]:
        if os.fstat(self.fd).st_size < self.offset:
            self.offset, self.partial = 0, b""  # trimmed in place: read it again
        chunks = [self.partial]
        while chunk := os.pread(self.fd, 1 << 16, self.offset):
            chunks.append(chunk)
            self.offset += len(chunk)
        whole, _, self.partial = b"".join(chunks).rpartition(b"\n")
        return whole.split(b"\n") if whole else []

    def close(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


class LogFollower:
    """Reads what is appended to a log after the follower was made (module doc); blocking.

    A file rotated away is still read for ``RETIRED_FOR`` seconds: a writer of another
    process appends to it until its own check (each second, ``event_log``) finds the new
    file."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._current = self._open(at_end=True)
        self._retired: list[tuple[_OpenFile, float]] = []  # with when to stop reading it

    def read_new(self) -> list[bytes]:
        """The whole lines appended since the last call."""
        lines: list[bytes] = []
        now = time.monotonic()
        for old, until in list(self._retired):
            lines += old.read_rest()
            if now > until:
                old.close()
                self._retired.remove((old, until))
        try:
            inode: int | None = os.stat(self.path).st_ino
        except FileNotFoundError:
            inode = None
        current = self._current
        if current is not None and current.inode != inode:
            lines += current.read_rest()  # rotated away (or removed): what it has so far
            self._retired.append((current, now + RETIRED_FOR))
            self._current = current = None
        if current is None and inode is not None:
            self._current = current = self._open(at_end=False)
        if current is not None:
            lines += current.read_rest()
        return lines

    def close(self) -> None:
        for old, _ in self._retired:
            old.close()
        self._retired.clear()
        if self._current is not None:
            self._current.close()
            self._current = None

    def _open(self, *, at_end: bool) -> _OpenFile | None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return None
        return _OpenFile(fd, at_end)


def record_change(line: bytes) -> RecordChange | None:
    """The change a log line tells of, or None (another event, or not a whole event)."""
    if not any(marker in line for marker in _WATCHED):
        return None  # most lines: no JSON parsing for them
    try:
        event = json.loads(line)
    except ValueError:
        return None
    data = event.get("data") if isinstance(event, dict) else None
    if not isinstance(data, dict):
        return None
    version_field = _VERSION.get(event.get("type"))
    if version_field is None:
        return None
    return change_of(data.get("kind"), data.get("key"), data.get(version_field))


class LogChanges:
    """``ChangeSource`` over a store's event log (module doc)."""

    def __init__(self, path: Path) -> None:
        self._path = path
        self._follower: LogFollower | None = None
        self._wake: LogWake | None = None
        self._heard: list[RecordChange] = []

    async def start(self) -> None:
        if self._follower is None:
            # The wake-up first: an append between the two is then both read and woken for.
            self._wake = LogWake(self._path)
            self._follower = await anyio.to_thread.run_sync(LogFollower, self._path)

    async def wait(self) -> list[RecordChange]:
        await self.start()
        assert self._follower is not None and self._wake is not None
        while True:
            # Read in a worker thread; what it read is kept on ``self`` before this call can
            # be cancelled, so a cancelled wait loses nothing.
            self._wake.arm()
            await anyio.to_thread.run_sync(self._read)
            if self._heard:
                heard, self._heard = self._heard, []
                return heard
            await self._wake.wait()

    def _read(self) -> None:
        assert self._follower is not None
        for line in self._follower.read_new():
            change = record_change(line)
            if change is not None:
                self._heard.append(change)

    async def aclose(self) -> None:
        follower, self._follower = self._follower, None
        wake, self._wake = self._wake, None
        if wake is not None:
            wake.close()
        if follower is not None:
            follower.close()
