"""OS file locks: the one wrapper around portalocker.

A lock lives on its own small file that is never replaced, so taking it never races with the
atomic ``os.replace`` of the data it protects, or (``directory=True``) on a directory's own
descriptor: a flock on a directory excludes as one on a file does, and a record directory is
made anyway, so its lock costs no file of its own (an inode made and later freed, per record).
Locks are flock-style: two handles conflict even inside one process, and the kernel drops a
lock when its holder dies, so a crashed orchestrator never leaves a lock that blocks the next
run.

Acquisition is always tried non-blocking; waiting is an async backoff, so the event loop never
blocks on someone else's lock. A lock file may be unlinked by a cleaner while a racer holds it
open, so after locking we check the path still names the inode we locked and retry if not; a
locked directory removed or renamed (its owner removes it while holding its lock) is noticed
the same way.

Only a holder makes anyone wait. A lock file that cannot be used for any other reason (a
symbolic link or a directory with files in its place, the OS refusing to open or lock it)
raises ``LockUnusable`` at once, naming the file and what to do: waiting for it, or retrying
the task that needed it, would go on forever. A lock file is reached from ``root`` (the
directory the caller's files live under, trusted as given) without following a link on the
way or at the file itself (``orchestrator.safety.safe_write``): the counter and notes some locks
keep in their own bytes would otherwise be written wherever a planted link points.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType, TracebackType
from typing import Any

import anyio
import anyio.to_thread

from orchestrator.errors import LockError, LockTimeout, LockUnusable, PathEscapeError
from orchestrator.safety import safe_write

__all__ = ["FileLock", "LockWait", "acquire", "acquire_blocking", "try_acquire"]

Opener = Callable[[Path, int], int]
"""Opens a lock file (its path, ``os.open`` flags) as ``safe_write.open_file`` would."""

_MIN_BACKOFF = 0.0005
_MAX_BACKOFF = 0.05


@functools.cache
def _portalocker() -> tuple[ModuleType, Any, Any]:
    """portalocker and its two non-blocking flags, imported on the first lock: its import reads
    the installed packages' metadata (some 15 ms), which a command that never locks (``council
    status``) should not pay. The flags are combined once: flag enum arithmetic costs as much
    as the flock call itself."""
    import portalocker

    flags = portalocker.LockFlags
    return portalocker, flags.EXCLUSIVE | flags.NON_BLOCKING, flags.SHARED | flags.NON_BLOCKING


class FileLock:
    """A held lock on ``path``; release it (or leave the ``with`` block) exactly once."""

    __slots__ = ("_fd", "_root", "directory", "path", "shared")

    def __init__(self, path: Path, fd: int, shared: bool, root: Path, directory: bool) -> None:
        self.path = path
        self.shared = shared
        self.directory = directory  # a lock on the directory ``path`` itself
        self._fd: int | None = fd
        self._root = root

    @property
    def held(self) -> bool:
        return self._fd is not None

    @property
    def descriptor(self) -> int:
        """The held lock's descriptor: for a directory's lock, the locked directory itself,
        reached without a link and checked to be the one ``path`` names (``try_acquire``), for
        files its holder makes in it (``FileOperations.open_new_in``)."""
        if self._fd is None:
            raise LockError(f"{self.path}: the lock is not held")
        return self._fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            # Closing the descriptor drops the flock; an explicit unlock first would open a
            # window in which another handle of ours still thinks it holds the lock.
            os.close(fd)

    def drawn_token(self, at_least: int = 0) -> int:
        """``bump_counter`` for a lock just taken to draw a token: released when it fails."""
        try:
            return self.bump_counter(at_least)
        except BaseException:
            self.release()
            raise

    def bump_counter(self, at_least: int = 0) -> int:
        """Advance the counter kept in the lock file's own bytes and return its new value.

        The value is larger than every value returned before for this file and than
        ``at_least``; only the holder of the exclusive lock may change it, which is what makes
        it usable as a fencing token. It is not fsynced: it survives process crashes, and a
        machine crash leaves no holder whose token could be confused with a new one.
        """
        if self._fd is None or self.shared or self.directory:
            raise LockError(f"{self.path}: only the holder of an exclusive lock bumps its counter")
        raw = os.pread(self._fd, 32, 0)
        try:
            last = int(raw.strip() or b"0")
        except ValueError:
            last = 0  # damaged bytes: the caller's ``at_least`` keeps tokens growing
        value = max(last, at_least) + 1
        data = str(value).encode()
        os.pwrite(self._fd, data, 0)
        if len(raw) > len(data):
            os.ftruncate(self._fd, len(data))
        return value

    def write_note(self, data: bytes) -> None:
        """Replace the lock file's bytes with ``data`` (who holds it, say) for others to read.

        The file is emptied first, so a reader sees nothing, a prefix, or all of ``data``,
        never a mix with what an earlier holder left; only the exclusive holder may write.
        """
        if self._fd is None or self.shared or self.directory:
            raise LockError(f"{self.path}: only the holder of an exclusive lock writes its note")
        os.ftruncate(self._fd, 0)
        os.pwrite(self._fd, data, 0)

    def unlink_and_release(self) -> None:
        """Remove the lock file while still holding it (racers re-check the inode and retry).
        Not for a directory's lock: its owner removes the directory (when empty) while it
        holds the lock, then releases it, so that nobody takes the lock between the removal
        and the release and writes in a directory that is gone."""
        if self._fd is None:
            raise LockError(f"{self.path}: cannot unlink a lock that is not held")
        if self.directory:
            raise LockError(f"{self.path}: a directory's lock is released, its owner removes it")
        if not self.shared:
            # A link on the way means the path is not our file any more: nothing to remove.
            with contextlib.suppress(PathEscapeError):
                safe_write.unlink(self._root, self.path)
        self.release()

    def __enter__(self) -> FileLock:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.release()


def try_acquire(
    path: Path,
    *,
    shared: bool = False,
    root: Path | None = None,
    opener: Opener | None = None,
    directory: bool = False,
) -> FileLock | None:
    """Take the lock on ``path`` now, or return None when another holder has it.

    ``root`` is the directory ``path`` must be reached from without a link on the way
    (default: the lock's own directory, so only the file itself is checked). ``opener``, when
    given, opens the lock file in its place as ``safe_write.open_file`` would (never through
    a link, ``PathEscapeError`` for one; directories made): the file store's, which keeps
    its directories' descriptors (``FileOps.open_lock``). ``directory``: the lock is the
    directory ``path`` itself (made when missing; the opener is handed ``O_DIRECTORY``)."""
    portalocker, exclusive, sharing = _portalocker()
    flags = sharing if shared else exclusive
    top = path.parent if root is None else root
    while True:
        fd = _open(top, path, opener, directory)
        try:
            portalocker.lock(fd, flags)
        except portalocker.exceptions.AlreadyLocked:
            os.close(fd)
            return None
        except portalocker.exceptions.LockException as exc:
            os.close(fd)
            raise LockUnusable(
                f"cannot lock {path}: {_reason(exc)} (the OS refused the lock, nobody "
                "holds it); fix its file system, then run `council resume`"
            ) from None
        except BaseException:
            os.close(fd)
            raise
        try:
            here = os.stat(path, follow_symlinks=False)
            opened = os.fstat(fd)
            same = (here.st_dev, here.st_ino) == (opened.st_dev, opened.st_ino)
        except FileNotFoundError:
            same = False
        if same:
            return FileLock(path, fd, shared, top, directory)
        os.close(fd)  # the file was unlinked or replaced under us: lock the one there now


def _reason(exc: Exception) -> str:
    cause = exc.args[0] if exc.args else exc
    return str(getattr(cause, "strerror", None) or cause)


def _open(root: Path, path: Path, opener: Opener | None = None, directory: bool = False) -> int:
    """The lock file's descriptor (created, and its directories, when missing)."""
    if directory:
        return _open_directory(root, path, opener)
    while True:
        try:
            if opener is not None:
                return opener(path, os.O_RDWR | os.O_CREAT)
            return safe_write.open_file(root, path, os.O_RDWR | os.O_CREAT, make_dirs=True)
        except PathEscapeError as exc:
            raise LockUnusable(
                f"cannot use lock file {path}: {exc}; CLI Council never made that link and "
                "never follows it: remove it (its target is untouched), then run "
                "`council resume`"
            ) from None
        except IsADirectoryError:
            # A directory where the lock file belongs (made by hand, or by a tool): an empty
            # one is nobody's, and goes; anything in it is left for a person to look at.
            try:
                safe_write.rmdir(root, path)
            except OSError:
                raise LockUnusable(
                    f"cannot use lock file {path}: a directory with files in it is in its "
                    "place; move it away, then run `council resume`"
                ) from None
        except OSError as exc:
            raise LockUnusable(
                f"cannot open lock file {path}: {exc.strerror or exc}; fix that (nobody holds "
                "the lock), then run `council resume`"
            ) from None


def _open_directory(root: Path, path: Path, opener: Opener | None) -> int:
    """A descriptor of its own (a flock belongs to one open) of the directory ``path``, made
    when missing, reached as a lock file is (no link on the way or at the directory)."""
    try:
        if opener is not None:
            return opener(path, os.O_RDONLY | os.O_DIRECTORY)
        return safe_write.open_dir(root, path, create=True)
    except PathEscapeError as exc:
        raise LockUnusable(  # a link, or a file, where the directory belongs
            f"cannot use lock directory {path}: {exc}; CLI Council never follows or touches "
            "it: move it away, then run `council resume`"
        ) from None
    except OSError as exc:
        raise LockUnusable(
            f"cannot open lock directory {path}: {exc.strerror or exc}; fix that (nobody holds "
            "the lock), then run `council resume`"
        ) from None


class LockWait:
    """One call's waits for a lock someone else holds, between its tries: exponential backoff
    from ``_MIN_BACKOFF`` to ``_MAX_BACKOFF``, then ``LockTimeout`` (naming the lock) once
    ``timeout`` seconds have passed since its first wait. For a caller whose try holds no lock
    while it waits (``acquire``, the file store's locked calls)."""

    def __init__(self, timeout: float) -> None:
        self._timeout = timeout
        self._deadline: float | None = None
        self._delay = _MIN_BACKOFF

    async def again(self, lock: Path) -> None:
        """Wait before the next try, the lock at ``lock`` found held."""
        now = time.monotonic()
        if self._deadline is None:
            self._deadline = now + self._timeout
        if now >= self._deadline:
            raise LockTimeout(lock, self._timeout)
        await anyio.sleep(min(self._delay, self._deadline - now))
        self._delay = min(self._delay * 2, _MAX_BACKOFF)


async def acquire(
    path: Path,
    *,
    shared: bool = False,
    timeout: float = 10.0,
    root: Path | None = None,
    directory: bool = False,
) -> FileLock:
    """Take the lock, waiting with async exponential backoff up to ``timeout`` seconds while
    someone holds it (``try_acquire``, ``LockWait``). Each try runs in a worker thread:
    opening the lock file walks its directories, which the event loop must never wait on."""
    waits = LockWait(timeout)
    while (lock := await anyio.to_thread.run_sync(_try, path, shared, root, directory)) is None:
        await waits.again(path)
    return lock


def _try(path: Path, shared: bool, root: Path | None, directory: bool) -> FileLock | None:
    return try_acquire(path, shared=shared, root=root, directory=directory)


def acquire_blocking(
    path: Path,
    *,
    shared: bool = False,
    timeout: float = 10.0,
    root: Path | None = None,
    directory: bool = False,
) -> FileLock:
    """The same for code already running in a worker thread (never call it on the event loop)."""
    deadline = time.monotonic() + timeout
    delay = _MIN_BACKOFF
    while True:
        lock = try_acquire(path, shared=shared, root=root, directory=directory)
        if lock is not None:
            return lock
        now = time.monotonic()
        if now >= deadline:
            raise LockTimeout(path, timeout)
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 2, _MAX_BACKOFF)
