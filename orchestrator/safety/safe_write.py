"""Writing files where a CLI can reach, without following a link it planted.

A CLI works in its worktree and private HOME and can write anywhere its user can: a symbolic
link it leaves at the path of a file the orchestrator is about to write (the handoff's temp
file, a log, a lock file, a copied file, git's ``info/exclude``), or in place of a directory
on the way there (``.council/state/tasks``, ``.council/handoff``), would otherwise turn the
orchestrator's write into a write outside the repository. Every file the orchestrator
creates, writes, renames, links or removes under ``.council/``, a worktree, a private HOME or
git's directory goes through here, with the ``root`` it must stay under (trusted as given):

- the directory is reached from ``root`` without following a link (``real_dir``): one open
  of the whole path, then the kernel's own name for the directory it opened
  (``/proc/self/fd``) compared with ``<root, resolved>/<relative path>``, so a link anywhere
  on the way is seen before anything is written; when they differ (or without ``/proc``) it
  is walked one component at a time with ``openat(..., O_DIRECTORY | O_NOFOLLOW)``, which
  also creates missing components and names the link it found;
- every operation then works relative to that directory's descriptor (``openat``,
  ``renameat``, ``linkat``, ``unlinkat``), so swapping a directory for a link after the check
  changes nothing: the descriptor is the directory that was checked;
- a file is opened with ``O_NOFOLLOW`` (a new temp file also with ``O_EXCL`` and an
  unguessable name); ``write_atomic`` renames it over the target (a rename replaces a link,
  never follows it).

A refused write raises ``PathEscapeError`` naming the path and the link found. Errors of the
file system itself are ``OSError`` naming the whole path, as a path-based call would.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import PathEscapeError

__all__ = [
    "create",
    "fsync_dir",
    "link",
    "make_dirs",
    "open_append",
    "open_child",
    "open_dir",
    "open_file",
    "open_in",
    "opened_at",
    "real_dir",
    "replace",
    "rmdir",
    "symlink",
    "unlink",
    "write_atomic",
]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE_FLAGS = os.O_NOFOLLOW | os.O_CLOEXEC
_FD_NAMES = "/proc/self/fd/"
_HAVE_FD_NAMES = os.path.isdir(_FD_NAMES)


@contextlib.contextmanager
def real_dir(
    root: Path, directory: Path, *, create: bool = True, mode: int = 0o755
) -> Iterator[int]:
    """A descriptor of ``directory`` (under ``root``) reached without following any link;
    missing directories are made (with ``mode``) when ``create``, else
    ``FileNotFoundError``."""
    fd = _dir_fd(os.fspath(root), os.fspath(directory), mode if create else None)
    try:
        yield fd
    finally:
        os.close(fd)


def open_file(
    root: Path, path: Path, flags: int, mode: int = 0o644, *, make_dirs: bool = False
) -> int:
    """``os.open(path, flags)`` under ``root``, never through a link: a link at ``path``
    or on the way raises ``PathEscapeError``. Missing directories are made only with
    ``make_dirs``."""
    # Strings, not Path objects: a lock is taken through here, and this is its whole cost.
    directory, _, name = os.fspath(path).rpartition(os.sep)
    dir_fd = _dir_fd(os.fspath(root), directory or os.sep, 0o755 if make_dirs else None)
    try:
        return open_in(dir_fd, name, flags, mode, path)
    finally:
        os.close(dir_fd)


def open_in(dir_fd: int, name: str, flags: int, mode: int, path: Path | str) -> int:
    """``os.open(name, flags)`` in the directory ``dir_fd`` (reached without a link), never
    through a link at ``name``: ``PathEscapeError`` then; other errors name ``path``."""
    try:
        return os.open(name, flags | _FILE_FLAGS, mode, dir_fd=dir_fd)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise PathEscapeError(
                f"refused to write {path}: it is a symbolic link{_target(dir_fd, name)}"
            ) from None
        raise _named(exc, Path(path)) from None


def open_dir(root: Path | str, directory: Path | str, create: bool) -> int:
    """``directory``'s descriptor, reached from ``root`` as ``real_dir`` reaches it (made when
    missing with ``create``, else ``FileNotFoundError``), for the caller to close."""
    return _dir_fd(os.fspath(root), os.fspath(directory), 0o755 if create else None)


def opened_at(fd: int, root: Path | str, directory: Path | str) -> bool:
    """Whether the directory open at ``fd`` is, now, ``directory`` under ``root`` reached
    with no link on the way: the kernel's own name for it (``/proc/self/fd``) is the one
    ``real_dir`` expects. False when it was moved, removed, or a link is on the way now (and
    without ``/proc``, where nothing can be told this way)."""
    if not _HAVE_FD_NAMES:
        return False
    _, expected = _plan(os.fspath(root), os.fspath(directory))
    try:
        return os.readlink(f"{_FD_NAMES}{fd}") == expected
    except OSError:
        return False


def open_child(parent_fd: int, name: str, directory: str, create: bool) -> int:
    """The descriptor of the directory ``name`` in the directory ``parent_fd`` (reached
    without a link), never through a link (``PathEscapeError`` naming ``directory``); made
    when missing with ``create``, else ``FileNotFoundError``."""
    if name in ("", ".", "..") or os.sep in name:
        raise PathEscapeError(f"refused to reach {directory}: {name!r} is no directory name")
    return _step(parent_fd, name, directory, 0o755 if create else None)


def open_append(root: Path, path: Path, *, truncate: bool = False, mode: int = 0o644) -> int:
    """A descriptor for appending to ``path`` (created if missing, directories too; emptied
    with ``truncate``), refused when ``path`` or a directory on the way is a link."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if truncate else os.O_APPEND)
    return open_file(root, path, flags, mode, make_dirs=True)


def write_atomic(root: Path, path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (temp file, rename; no fsync: not state). A link at
    ``path`` is replaced, never followed."""
    with real_dir(root, path.parent) as dir_fd, _temporary(dir_fd, path, data, mode) as temp:
        os.replace(temp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)


def create(root: Path, path: Path, data: bytes, mode: int = 0o644) -> bool:
    """Write ``data`` to ``path`` only where no file of that name exists (temp file, then a
    hard link, which never replaces anything); True when written, False when something was
    there already (left as it was)."""
    with real_dir(root, path.parent) as dir_fd, _temporary(dir_fd, path, data, mode) as temp:
        try:
            os.link(temp, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except FileExistsError:
            return False
        return True


@contextlib.contextmanager
def _temporary(dir_fd: int, path: Path, data: bytes, mode: int) -> Iterator[str]:
    """A new file beside ``path`` (an unguessable name, never a link) holding ``data``: its
    name, for the caller to rename or link; gone afterwards unless renamed."""
    temporary = f".{path.name}.{secrets.token_hex(6)}.tmp"
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | _FILE_FLAGS
    fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
    try:
        try:
            _write_all(fd, data)
        finally:
            os.close(fd)
        yield temporary
    finally:
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=dir_fd)


def make_dirs(root: Path, directory: Path, mode: int = 0o755) -> None:
    """``os.makedirs(directory, mode, exist_ok=True)``, without following a link on the way."""
    with real_dir(root, directory, mode=mode):
        pass


def replace(root: Path, src: Path, dst: Path) -> None:
    """``os.replace(src, dst)``; both directories reached without following a link."""
    with _dir_pair(root, src, dst) as (src_fd, dst_fd):
        try:
            os.replace(src.name, dst.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd)
        except OSError as exc:
            raise _named(exc, src if exc.errno == errno.ENOENT else dst) from None


def link(root: Path, src: Path, dst: Path) -> None:
    """A hard link ``dst`` to the file ``src`` (a link at ``src`` is linked, not followed)."""
    with _dir_pair(root, src, dst) as (src_fd, dst_fd):
        try:
            os.link(src.name, dst.name, src_dir_fd=src_fd, dst_dir_fd=dst_fd, follow_symlinks=False)
        except OSError as exc:
            raise _named(exc, src if exc.errno == errno.ENOENT else dst) from None


def symlink(root: Path, path: Path, value: str) -> None:
    """A symbolic link at ``path`` holding ``value``, in place of whatever file or link was
    there (never through a link on the way)."""
    with real_dir(root, path.parent) as dir_fd:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path.name, dir_fd=dir_fd)
        try:
            os.symlink(value, path.name, dir_fd=dir_fd)
        except OSError as exc:
            raise _named(exc, path) from None


def unlink(root: Path, path: Path) -> None:
    """Remove the file ``path`` if it is there (a link is removed, its target untouched)."""
    try:
        with real_dir(root, path.parent, create=False) as dir_fd:
            os.unlink(path.name, dir_fd=dir_fd)
    except FileNotFoundError:
        return


def rmdir(root: Path, directory: Path) -> None:
    """Remove the empty directory ``directory`` (OSError if it is not empty)."""
    with real_dir(root, directory.parent, create=False) as dir_fd:
        try:
            os.rmdir(directory.name, dir_fd=dir_fd)
        except OSError as exc:
            raise _named(exc, directory) from None


def fsync_dir(root: Path, directory: Path) -> None:
    with real_dir(root, directory, create=False) as fd:
        os.fsync(fd)


# -- reaching a directory -----------------------------------------------------------------


@contextlib.contextmanager
def _dir_pair(root: Path, src: Path, dst: Path) -> Iterator[tuple[int, int]]:
    """Descriptors of the directories of ``src`` and ``dst`` (one, when they share it)."""
    with real_dir(root, src.parent, create=False) as src_fd:
        if os.path.normpath(dst.parent) == os.path.normpath(src.parent):
            yield src_fd, src_fd
        else:
            with real_dir(root, dst.parent, create=False) as dst_fd:
                yield src_fd, dst_fd


def _dir_fd(root: str, directory: str, mode: int | None) -> int:
    """``directory``'s descriptor (see ``real_dir``); ``mode`` None: make nothing.

    First one open of the whole path and the kernel's own name for what it opened: opening a
    directory has no effect on anything, so opening it through a link and looking afterwards
    is safe, and an existing directory with no link on the way (the common case) costs three
    system calls where the walk costs two per component. A missing directory to be made
    whose parent is there (a new record's, a new worktree's) is made from the parent reached
    that way: one step, not the walk from ``root`` (a run of 10,000 tasks makes 10,000).
    Otherwise (a link, several directories missing, no ``/proc``) the walk, which makes what
    is missing and names what it refused."""
    parts, expected = _plan(root, directory)
    if _HAVE_FD_NAMES:
        fd = _opened_as(directory, expected)
        if fd >= 0:
            return fd
        if mode is not None and parts:
            parent = _opened_as(os.path.dirname(expected), os.path.dirname(expected))
            if parent >= 0:
                try:
                    return _step(parent, parts[-1], directory, mode)
                except FileNotFoundError:
                    pass  # the parent went meanwhile: the walk makes it again, or says why
                finally:
                    os.close(parent)
    return _walk(root, directory, parts, mode)


def _opened_as(directory: str, expected: str) -> int:
    """``directory``'s descriptor when the kernel names what it opened ``expected`` (no link
    on the way); -1 otherwise (missing, a link on the way, not a directory)."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return -1
    try:
        if os.readlink(f"{_FD_NAMES}{fd}") == expected:
            return fd
    except OSError:
        pass
    os.close(fd)
    return -1


@functools.lru_cache(maxsize=1024)
def _plan(root: str, directory: str) -> tuple[tuple[str, ...], str]:
    """The components of ``directory`` below ``root`` (lexically; ``..`` is refused), and the
    name the kernel gives the directory when no link is on the way. Cached: a root that
    resolves differently later (moved) only sends callers to the walk."""
    top = os.path.normpath(root)
    inner = os.path.normpath(directory)
    if inner == top:
        parts: tuple[str, ...] = ()
    else:
        prefix = top if top.endswith(os.sep) else top + os.sep
        if not inner.startswith(prefix):
            raise PathEscapeError(f"{directory} is not under {root}")
        parts = tuple(inner[len(prefix) :].split(os.sep))
        if ".." in parts:
            raise PathEscapeError(f"{directory} leaves {root}")
    return parts, os.path.join(_real_root(top), *parts)


@functools.lru_cache(maxsize=64)
def _real_root(root: str) -> str:
    """``root`` resolved, once: a store has one root and 10,000 task directories under it,
    more than ``_plan`` keeps, and resolving takes a system call per component."""
    return os.path.realpath(root)


def _walk(root: str, directory: str, parts: tuple[str, ...], mode: int | None) -> int:
    """Open ``directory`` one component at a time; ``mode`` None: make nothing."""
    try:
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself is trusted
    except FileNotFoundError:
        if mode is None:
            raise
        os.makedirs(root, exist_ok=True)
        fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)
    try:
        for name in parts:
            child = _step(fd, name, directory, mode)
            os.close(fd)
            fd = child
    except BaseException:
        os.close(fd)
        raise
    return fd


def _step(fd: int, name: str, directory: str, mode: int | None) -> int:
    """Open ``name`` under the directory ``fd`` as a real directory (made with ``mode`` if
    missing, unless ``mode`` is None)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if mode is None:
            raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), directory) from None
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, mode, dir_fd=fd)
        return _step(fd, name, directory, None)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathEscapeError(
                f"refused to write under {directory}: {name!r} on the way is a symbolic link"
                f"{_target(fd, name)} or not a directory"
            ) from None
        raise


def _target(dir_fd: int, name: str) -> str:
    try:
        return f" (to {os.readlink(name, dir_fd=dir_fd)})"
    except OSError:
        return ""


def _named(exc: OSError, path: Path) -> OSError:
    """``exc`` again, naming the whole path (a call relative to a descriptor names only the
    last component)."""
    return type(exc)(exc.errno, exc.strerror, os.fspath(path))


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
