"""The file backend's ``ChangeSource``: the record writes appended to ``events.jsonl`` by any
process, read from where the source started.

Every write of a record appends its ``state.updated`` (a recovery its ``state.recovered``) to
the log before the write returns (``event_log``), so a change read here is already on disk.
The log is followed by its inode: when the file at the log's path is another one (rotated
away and started afresh), what the old file still holds past the offset reached is read first
from the descriptor kept open on it, then the new file from its start. A file that shrank in
place (trimmed) is read again from its start. A part of a line is kept until its end arrives.
Waking up is ``LogWake``'s: inotify where it can, a short growing interval elsewhere.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path

import anyio.to_thread

from orchestrator.state.changes import RecordChange, change_of
from orchestrator.state.file.log_wake import LogWake

__all__ = ["LogChanges", "LogFollower"]

_WATCHED = (b'"state.updated"', b'"state.recovered"')
# Where each watched event type keeps the record's new version.
_VERSION: dict[object, str] = {"state.updated": "version", "state.recovered": "new_version"}


class LogFollower:
    """Reads what is appended to a log after the follower was made (module doc); blocking."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._handle: int | None = None
        self._inode = 0
        self._offset = 0
        self._partial = b""
        self._open(at_end=True)

    def read_new(self) -> list[bytes]:
        """The whole lines appended since the last call."""
        lines: list[bytes] = []
        try:
            st = os.stat(self.path)
        except FileNotFoundError:
            st = None
        if self._handle is not None and (st is None or st.st_ino != self._inode):
            lines += self._read_rest()  # rotated away (or removed): finish the old file
            self._close()
        if self._handle is None and st is not None:
            self._open(at_end=False)
        if self._handle is not None:
            lines += self._read_rest()
        return lines

    def close(self) -> None:
        self._close()

    def _open(self, *, at_end: bool) -> None:
        try:
            fd = os.open(self.path, os.O_RDONLY | os.O_CLOEXEC)
        except FileNotFoundError:
            return
        st = os.fstat(fd)
        self._handle, self._inode, self._partial = fd, st.st_ino, b""
        self._offset = st.st_size if at_end else 0

    def _read_rest(self) -> list[bytes]:
        assert self._handle is not None
        if os.fstat(self._handle).st_size < self._offset:
            self._offset, self._partial = 0, b""  # trimmed in place: read it again
        chunks = [self._partial]
        while chunk := os.pread(self._handle, 1 << 16, self._offset):
            chunks.append(chunk)
            self._offset += len(chunk)
        data = b"".join(chunks)
        whole, _, self._partial = data.rpartition(b"\n")
        return whole.split(b"\n") if whole else []

    def _close(self) -> None:
        fd, self._handle = self._handle, None
        if fd is not None:
            with contextlib.suppress(OSError):
                os.close(fd)


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
