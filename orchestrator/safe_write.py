"""Writing files where a CLI can reach, without following a link it planted.

A CLI works in its worktree and can write anywhere its user can: a symbolic link it leaves at
the path of a file the orchestrator is about to write (the handoff's temp file, a log, a
copied file, git's ``info/exclude``), or in place of a directory on the way there, would
otherwise turn the orchestrator's write into a write outside the repository. Every such write
goes through here:

- the directory is reached from a trusted ``root`` one component at a time with
  ``openat(..., O_DIRECTORY | O_NOFOLLOW)``, creating missing components the same way, so no
  component may be a link (``real_dir``);
- the file is opened relative to that directory with ``O_NOFOLLOW``; a new temp file also
  with ``O_EXCL`` and an unguessable name, then renamed over the target (a rename replaces a
  link, never follows it).

A refused write raises ``PathEscapeError`` naming the path and the link found.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path

from orchestrator.errors import PathEscapeError

__all__ = ["open_append", "real_dir", "write_atomic"]

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@contextlib.contextmanager
def real_dir(root: Path, directory: Path, *, create: bool = True) -> Iterator[int]:
    """A descriptor of ``directory`` (under ``root``) reached without following any link."""
    relative = _relative(root, directory)
    fd = os.open(root, _DIR_FLAGS & ~os.O_NOFOLLOW)  # the root itself is trusted
    try:
        for name in relative.parts:
            if name in ("", "."):
                continue
            if name == "..":
                raise PathEscapeError(f"{directory} leaves {root}")
            child = _step(fd, name, directory, create)
            os.close(fd)
            fd = child
        yield fd
    finally:
        os.close(fd)


def write_atomic(root: Path, path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace ``path`` with ``data`` (temp file, rename; no fsync: not state). A link at
    ``path`` is replaced, never followed."""
    with real_dir(root, path.parent) as dir_fd:
        temporary = f".{path.name}.{secrets.token_hex(6)}.tmp"
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        fd = os.open(temporary, flags, mode, dir_fd=dir_fd)
        try:
            try:
                _write_all(fd, data)
            finally:
                os.close(fd)
            os.replace(temporary, path.name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary, dir_fd=dir_fd)
            raise


def open_append(root: Path, path: Path, *, truncate: bool = False, mode: int = 0o644) -> int:
    """A descriptor for appending to ``path`` (created if missing; emptied with
    ``truncate``), refused when ``path`` or a directory on the way is a link."""
    with real_dir(root, path.parent) as dir_fd:
        flags = os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC
        flags |= os.O_TRUNC if truncate else os.O_APPEND
        try:
            return os.open(path.name, flags, mode, dir_fd=dir_fd)
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise PathEscapeError(f"refused to write {path}: it is a symbolic link") from None
            raise


def _step(fd: int, name: str, directory: Path, create: bool) -> int:
    """Open ``name`` under the directory ``fd`` as a real directory (made if missing)."""
    try:
        return os.open(name, _DIR_FLAGS, dir_fd=fd)
    except FileNotFoundError:
        if not create:
            raise
        with contextlib.suppress(FileExistsError):
            os.mkdir(name, 0o755, dir_fd=fd)
        return _step(fd, name, directory, False)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR):
            raise PathEscapeError(
                f"refused to write under {directory}: {name!r} on the way is a symbolic link "
                "or not a directory"
            ) from None
        raise


def _relative(root: Path, directory: Path) -> Path:
    try:
        return directory.relative_to(root)
    except ValueError:
        raise PathEscapeError(f"{directory} is not under {root}") from None


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]
