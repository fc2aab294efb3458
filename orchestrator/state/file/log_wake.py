"""Being woken when the event log may have grown, without reading it over and over.

On Linux one inotify descriptor watches the log's directory (the directory, not the file, so
a log rotated away and started afresh is followed: its new file is created in the same place)
and the event loop waits for it to become readable: no CPU at all while nothing is written,
and a wake-up within the kernel's own latency after another process appends. Elsewhere, or
when inotify is refused (its per-user limit reached) or the directory does not exist yet, the
log's size and inode are looked at on an interval that starts short and grows while nothing
changes (``POLL``): a few cheap ``stat`` calls a second at most.

A wake-up only says "look": the caller reads the log from where it stopped and decides.
"""

from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import errno
import os
import sys
from pathlib import Path

import anyio

__all__ = ["POLL", "LogWake"]

POLL = (0.02, 0.25)  # seconds between looks without inotify: first, and at most (x1.5 each)

# <sys/inotify.h>: appended to, closed after writing, created, renamed in or away.
_IN_MODIFY, _IN_CLOSE_WRITE = 0x002, 0x008
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x040, 0x080, 0x100, 0x200
_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


def _libc() -> ctypes.CDLL | None:
    if not sys.platform.startswith("linux"):
        return None
    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6", use_errno=True)
    except OSError:
        return None


_LIBC = _libc()


class LogWake:
    """Wakes its owner when ``path`` may have changed (module doc)."""

    def __init__(self, path: Path, *, inotify: bool = True) -> None:
        """``inotify=False`` looks on an interval even where inotify works (tests, bench)."""
        self.path = path
        self._kernel = inotify and _LIBC is not None
        self._fd = self._inotify(path.parent) if self._kernel else None
        self._interval = POLL[0]
        self._seen = self._look()

    @property
    def efficient(self) -> bool:
        """Whether the kernel wakes it (inotify), rather than looking on an interval."""
        return self._fd is not None

    async def wait(self) -> None:
        """Return once the log may have changed (it may return without a change)."""
        if self._fd is not None:
            await anyio.wait_readable(self._fd)
            self._drain()
            return
        while True:
            await anyio.sleep(self._interval)
            seen = self._look()
            if seen != self._seen:
                self._seen, self._interval = seen, POLL[0]
                return
            self._interval = min(self._interval * 1.5, POLL[1])
            if self._interval >= POLL[1] and self._kernel:
                # The directory may exist by now (the first event of a run made it).
                self._fd = self._inotify(self.path.parent)
                if self._fd is not None:
                    return  # look once more: a write may have come between the two

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            with contextlib.suppress(OSError):
                anyio.notify_closing(fd)
            os.close(fd)

    def _look(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)

    def _drain(self) -> None:
        """Read the queued notifications away (what they say does not matter: the owner
        reads the log itself)."""
        assert self._fd is not None
        with contextlib.suppress(BlockingIOError):
            while os.read(self._fd, 65536):
                pass

    @staticmethod
    def _inotify(directory: Path) -> int | None:
        if _LIBC is None:
            return None
        fd = int(_LIBC.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
        if fd < 0:
            return None  # the per-user limit of instances: look on an interval instead
        watch = int(_LIBC.inotify_add_watch(fd, os.fsencode(directory), _MASK))
        if watch < 0:
            code = ctypes.get_errno()
            os.close(fd)
            if code not in (errno.ENOENT, errno.ENOTDIR, errno.ENOSPC, errno.EACCES):
                raise OSError(code, os.strerror(code), str(directory))
            return None
        return fd
