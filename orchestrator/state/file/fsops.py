"""The file operations the state store is built on, behind one narrow object.

Every durable write goes through a ``FileOperations`` (``FileOps``) so tests can put a
fault-injecting one in its place (``orchestrator.testing.faulty_fs``: ENOSPC on write, EIO on fsync,
a crash between replace and the directory fsync) and check that the previous state survives. That
covers the records, their history links, quarantine, checkpoints and the event log: nothing of the
store creates, writes, renames, links or removes a file past this object, and nothing it does
follows a symbolic link (``FileOps``).

``durable_write`` tells its caller how far it got: an ``OSError`` means the old file is still
in place; ``NotSynced`` (an ``OSError`` too) means the new file replaced it but the directory
could not be synced, so every process already sees the new bytes and only a machine crash
could bring the old ones back.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Protocol, cast

from orchestrator.errors import PathEscapeError, StateWriteError
from orchestrator.safety import safe_write
from orchestrator.safety.crashpoints import crash_point
from orchestrator.safety.held_dirs import HeldDirs

__all__ = ["FileOperations", "FileOps", "NotSynced", "durable_write", "write_error"]


class NotSynced(OSError):
    """The new file is in place, but the fsync of its directory failed."""


class FileOperations(Protocol):
    """What the store does to files, and all it does: ``FileOps`` is the real thing; the fakes
    of ``orchestrator.testing.faulty_fs`` wrap one to fail or skip on purpose."""

    def confine(self, root: Path) -> None: ...
    def root_of(self, path: Path) -> Path: ...
    def close_dirs(self) -> None: ...
    def open_lock(self, path: Path, flags: int) -> int: ...
    def makedirs(self, directory: Path) -> None: ...
    def open_new(self, path: Path) -> int: ...
    def open_new_in(self, directory_fd: int, name: str, path: Path) -> int: ...
    def open_append(self, path: Path) -> int: ...
    def write(self, fd: int, data: bytes) -> None: ...
    def fsync(self, fd: int) -> None: ...
    def close(self, fd: int) -> None: ...
    def replace(self, src: Path, dst: Path) -> None: ...
    def link(self, src: Path, dst: Path) -> None: ...
    def unlink(self, path: Path) -> None: ...
    def rmdir(self, directory: Path) -> None: ...
    def fsync_dir(self, directory: Path) -> None: ...
    def sync_all(self, directory: Path) -> None: ...


class FileOps:
    """Plain POSIX file operations (``FileOperations``).

    Each operation stays under a directory it was confined to (``confine``: the store's
    root, the event log's directory) and never follows a link on the way or at the file: a
    directory is reached once as ``orchestrator.safety.safe_write`` reaches it and its
    descriptor kept (``orchestrator.safety.held_dirs``: a link planted on the way later
    cannot redirect a write, the descriptor being the directory checked), every operation
    relative to it. A link someone planted in the store is refused as an ``OSError`` with
    ``errno.ELOOP`` naming it, like any other file the disk refuses. A path under no
    confined directory is refused the same way.
    """

    _roots: tuple[str, ...] = ()

    @functools.cached_property
    def dirs(self) -> HeldDirs:
        """The descriptors of the directories reached so far (made on first use: a subclass
        need not call an ``__init__``)."""
        return HeldDirs(self._root_str)

    def confine(self, root: Path) -> None:
        """Allow writes under ``root`` (trusted as given), reached without following links.
        An instance shared by several stores holds the roots of all of them."""
        normal = os.path.normpath(root)
        if normal not in self._roots:
            self._roots = (*self._roots, normal)
            self.dirs.close()  # each directory reached again from its outermost root

    def root_of(self, path: Path) -> Path:
        """The outermost confined directory holding ``path``: every directory below it is
        checked on the way."""
        return _root_path(self._root_str(os.fspath(path)))

    def _root_str(self, path: str) -> str:
        inner = os.path.normpath(path)
        found = ""
        for root in self._roots:
            prefix = root if root.endswith(os.sep) else root + os.sep
            inside = inner == root or inner.startswith(prefix)
            if inside and (not found or len(root) < len(found)):
                found = root
        if not found:
            raise OSError(errno.EPERM, "outside the directories the store writes in", path)
        return found

    def close_dirs(self) -> None:
        self.dirs.close()

    def makedirs(self, directory: Path) -> None:
        with _refused_links(directory):
            self.dirs.run(os.fspath(directory), True, _nothing)

    def open_new(self, path: Path) -> int:
        return self._open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL)

    def open_append(self, path: Path) -> int:
        return self._open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT)

    def open_new_in(self, directory_fd: int, name: str, path: Path) -> int:
        """A new file ``name`` (``path``: its name for errors) made in the directory open at
        ``directory_fd``, which the caller reached without a link and holds (a record's lock:
        its directory's own descriptor, ``filelock``): one ``openat``, no walk, no look at the
        kernel's name for the directory."""
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL
        with _refused_links(path):
            return safe_write.open_in(directory_fd, name, flags, 0o644, path)

    def _open(self, path: Path, flags: int) -> int:
        directory, _, name = os.fspath(path).rpartition(os.sep)
        with _refused_links(path):
            return self.dirs.run(
                directory, False, lambda fd: safe_write.open_in(fd, name, flags, 0o644, path)
            )

    def open_lock(self, path: Path, flags: int) -> int:
        if flags & os.O_DIRECTORY:  # a directory's lock: a descriptor of its own, made
            return self.dirs.run(os.fspath(path), True, _own_descriptor)
        directory, _, name = os.fspath(path).rpartition(os.sep)
        return self.dirs.run(
            directory, True, lambda fd: safe_write.open_in(fd, name, flags, 0o644, path)
        )

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
        self._pair(src, dst, os.replace)

    def link(self, src: Path, dst: Path) -> None:
        self._pair(src, dst, functools.partial(os.link, follow_symlinks=False))

    def _pair(self, src: Path, dst: Path, call: Callable[..., None]) -> None:
        """``call(src, dst)`` relative to their directories' descriptors; an error names
        ``src`` when it is missing, else ``dst``."""
        src_dir, _, src_name = os.fspath(src).rpartition(os.sep)
        dst_dir, _, dst_name = os.fspath(dst).rpartition(os.sep)

        def between(src_fd: int, dst_fd: int) -> None:
            call(src_name, dst_name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)

        def from_src(src_fd: int) -> None:
            if os.path.normpath(dst_dir) == os.path.normpath(src_dir):
                between(src_fd, src_fd)
            else:
                self.dirs.run(dst_dir, False, lambda dst_fd: between(src_fd, dst_fd))

        try:
            with _refused_links(dst):
                self.dirs.run(src_dir, False, from_src)
        except OSError as exc:
            named = src if exc.errno == errno.ENOENT else dst
            raise type(exc)(exc.errno, exc.strerror, os.fspath(named)) from None

    def unlink(self, path: Path) -> None:
        directory, _, name = os.fspath(path).rpartition(os.sep)
        with _refused_links(path), contextlib.suppress(FileNotFoundError):
            self.dirs.run(directory, False, lambda fd: os.unlink(name, dir_fd=fd))

    def rmdir(self, directory: Path) -> None:
        parent, _, name = os.fspath(directory).rpartition(os.sep)
        try:
            with _refused_links(directory):
                self.dirs.run(parent, False, lambda fd: os.rmdir(name, dir_fd=fd))
        except OSError as exc:
            raise type(exc)(exc.errno, exc.strerror, os.fspath(directory)) from None
        self.dirs.forget(os.fspath(directory))

    def fsync_dir(self, directory: Path) -> None:
        with _refused_links(directory):
            self.dirs.run(os.fspath(directory), False, os.fsync)

    def sync_all(self, directory: Path) -> None:
        """Make every write made so far durable, the files' bytes and the directories'
        entries alike: one barrier for many files written without an fsync each (a batch of
        records), where one fsync per file and per directory would cost a disk flush each.
        Linux's ``syncfs`` of the file system that holds ``directory`` (it returns once the
        data is on disk, and reports a write-back error), elsewhere ``os.sync``: not every
        file system of the machine, whose other writers (CLIs, git, a build) would make each
        barrier wait for their data too."""
        root = self.root_of(directory)  # only for a store's own directories
        if not _syncfs(root):
            os.sync()


def _nothing(fd: int) -> None:
    """What ``makedirs`` does with the directory it reached: nothing more."""


def _own_descriptor(fd: int) -> int:
    """A new open of the held directory ``fd`` for a lock (a flock belongs to one open: the
    held descriptor, shared by threads, must not carry one). Should the directory be removed
    between ``HeldDirs``' check and this open, the lock's own check (the path names the inode
    locked) sees it and tries again."""
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=fd)


_SYNCFS: list[Callable[[int], int] | None] = []  # libc's syncfs, looked up once


def _syncfs(directory: Path) -> bool:
    """``syncfs(2)`` on the file system holding ``directory``; False where there is none."""
    if not _SYNCFS:
        _SYNCFS.append(_libc_syncfs())
    call = _SYNCFS[0]
    if call is None:
        return False
    fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
    try:
        if call(fd) != 0:
            import ctypes

            number = ctypes.get_errno()
            raise OSError(number, os.strerror(number), str(directory))
    finally:
        os.close(fd)
    return True


def _libc_syncfs() -> Callable[[int], int] | None:
    if not sys.platform.startswith("linux"):
        return None
    import ctypes

    try:
        function = ctypes.CDLL(None, use_errno=True).syncfs
    except (OSError, AttributeError):
        return None
    function.argtypes = [ctypes.c_int]
    function.restype = ctypes.c_int
    return cast("Callable[[int], int]", function)


@functools.lru_cache(maxsize=64)
def _root_path(root: str) -> Path:
    """A confined root as a ``Path``, made once: every file operation of a write asks
    ``root_of`` (five per record written), and a new ``Path`` was most of its cost."""
    return Path(root)


@contextlib.contextmanager
def _refused_links(path: Path) -> Iterator[None]:
    """A link refused on the way to ``path`` as the OSError every caller of the store already
    handles (it names the file and says the state is unchanged)."""
    try:
        yield
    except PathEscapeError as exc:
        raise OSError(errno.ELOOP, str(exc), str(path)) from None


def durable_write(
    path: Path,
    data: bytes,
    ops: FileOperations,
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
