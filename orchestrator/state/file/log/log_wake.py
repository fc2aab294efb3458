"""Being woken when the event log may have grown, without reading it over and over.

On Linux one inotify descriptor watches the log's directory (the directory, not the file, so
a log rotated away and started afresh is followed: its new file is created in the same place),
shared by every waiter of the event loop on it, and the event loop waits for it to become
readable: no CPU at all while nothing is written, and a wake-up within the kernel's own
latency after another process appends. Elsewhere, or
when inotify is refused (its per-user limit reached) or the directory does not exist yet, the
log's size and inode are looked at on an interval that starts short and grows while nothing
changes (``POLL``): a few cheap ``stat`` calls a second at most.

A wake-up only says "look": the caller reads the log from where it stopped and decides.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import functools
import os
import sys
from pathlib import Path

import anyio
import anyio.lowlevel

__all__ = ["POLL", "LogWake"]

POLL = (0.02, 0.25)  # seconds between looks without inotify: first, and at most (x1.5 each)

# <sys/inotify.h>: appended to, closed after writing, created, renamed in or away.
_IN_MODIFY, _IN_CLOSE_WRITE = 0x002, 0x008
_IN_MOVED_FROM, _IN_MOVED_TO, _IN_CREATE, _IN_DELETE = 0x040, 0x080, 0x100, 0x200
_MASK = _IN_MODIFY | _IN_CLOSE_WRITE | _IN_MOVED_FROM | _IN_MOVED_TO | _IN_CREATE | _IN_DELETE
_IN_NONBLOCK, _IN_CLOEXEC = os.O_NONBLOCK, os.O_CLOEXEC


@functools.cache
def _libc() -> ctypes.CDLL | None:
    """The C library's ``inotify`` calls, looked up on first use: the symbols this process has
    loaded already (``dlopen(NULL)``: the C library is among them, glibc or musl).
    ``ctypes.util.find_library``, used here before, runs ``ldconfig -p`` as a child process,
    which every process that imported the event log paid at start-up (some 6 ms of wall and
    a child process each, whether it waited on the log or not)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.inotify_init1  # noqa: B018  (an AttributeError without inotify: poll instead)
        libc.inotify_add_watch  # noqa: B018
    except (OSError, AttributeError):
        return None
    return libc


class _DirectoryWatch:
    """One inotify descriptor on a directory, shared by every ``LogWake`` of one event loop on
    it: a process that waits on many records at once still holds one of the
    few instances a user may have (128 by default). One waiter at a time reads the
    descriptor; each notification read bumps ``generation`` and wakes every waiter."""

    def __init__(self, fd: int) -> None:
        self.fd = fd
        self.users = 0
        self.generation = 0
        self._reading = False
        self._read = anyio.Event()

    async def wait_past(self, generation: int) -> None:
        """Return once ``generation`` has passed (what the kernel queued meanwhile counts)."""
        while self.generation == generation:
            if self._reading:
                await self._read.wait()
                continue
            self._reading = True
            try:
                await anyio.wait_readable(self.fd)
                with contextlib.suppress(BlockingIOError):
                    while os.read(self.fd, 65536):
                        pass  # what they say does not matter: the owner reads the log
                self.generation += 1
            finally:
                # Cut short or not, the others wake: one of them reads from here on.
                self._reading = False
                self._read.set()
                self._read = anyio.Event()


_WATCHES: dict[tuple[object, Path], _DirectoryWatch] = {}  # by event loop and directory


class LogWake:
    """Wakes its owner when ``path`` may have changed (module doc). Call ``arm`` before
    reading the log, then ``wait``: a change after ``arm`` is never slept through."""

    def __init__(self, path: Path, *, inotify: bool = True) -> None:
        """``inotify=False`` looks on an interval even where inotify works (tests, bench)."""
        self.path = path
        self._kernel = inotify and _libc() is not None
        self._watch: _DirectoryWatch | None = None
        self._armed = 0
        self._interval = POLL[0]
        self._seen = self._look()
        if self._kernel:
            self._join()

    @property
    def efficient(self) -> bool:
        """Whether the kernel wakes it (inotify), rather than looking on an interval."""
        return self._watch is not None

    def arm(self) -> None:
        if self._watch is not None:
            self._armed = self._watch.generation

    async def wait(self) -> None:
        """Return once the log may have changed since ``arm`` (or without a change)."""
        if self._watch is not None:
            await self._watch.wait_past(self._armed)
            return
        while True:
            await anyio.sleep(self._interval)
            seen = self._look()
            if seen != self._seen:
                self._seen, self._interval = seen, POLL[0]
                return
            self._interval = min(self._interval * 1.5, POLL[1])
            if self._interval >= POLL[1] and self._kernel and self._join():
                # The directory exists by now (the first event of a run made it): look
                # once more, a write may have come between the two.
                return

    def close(self) -> None:
        watch, self._watch = self._watch, None
        if watch is None:
            return
        watch.users -= 1
        if watch.users == 0:
            key = next(k for k, v in _WATCHES.items() if v is watch)
            del _WATCHES[key]
            with contextlib.suppress(OSError):
                anyio.notify_closing(watch.fd)
            os.close(watch.fd)

    def _join(self) -> bool:
        """Share this event loop's watch on the log's directory, made if needed; False when
        inotify cannot watch it (no directory yet, the user's limit reached)."""
        key = (anyio.lowlevel.current_token(), self.path.parent)
        watch = _WATCHES.get(key)
        if watch is None:
            fd = _inotify(self.path.parent)
            if fd is None:
                return False
            watch = _WATCHES[key] = _DirectoryWatch(fd)
        watch.users += 1
        self._watch = watch
        self._armed = watch.generation
        return True

    def _look(self) -> tuple[int, int, int]:
        try:
            st = os.stat(self.path)
        except OSError:
            return (0, 0, 0)
        return (st.st_ino, st.st_size, st.st_mtime_ns)


def _inotify(directory: Path) -> int | None:
    libc = _libc()
    if libc is None:
        return None
    fd = int(libc.inotify_init1(_IN_NONBLOCK | _IN_CLOEXEC))
    if fd < 0:
        return None  # the per-user limit of instances: look on an interval instead
    watch = int(libc.inotify_add_watch(fd, os.fsencode(directory), _MASK))
    if watch < 0:
        code = ctypes.get_errno()
        os.close(fd)
        if code not in (errno.ENOENT, errno.ENOTDIR, errno.ENOSPC, errno.EACCES):
            raise OSError(code, os.strerror(code), str(directory))
        return None
    return fd
