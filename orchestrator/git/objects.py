"""A sandboxed CLI's own object store, and taking what it wrote into the repository's.

Under the sandbox a CLI's git writes new objects to a private directory
(``GIT_OBJECT_DIRECTORY``, with the repository's store as its alternate), and sees the shared
store read-only: no CLI can delete a pack or a loose object of anyone else's history, nor plant
a corrupt object under the name of one another session will write later (git never rewrites an
object it finds present).

``adopt_objects(private, shared, git)`` (blocking) takes what the CLI wrote into the shared
store once it has exited (and everything it started with it), before any other git command
looks at its commits. Objects enter **by their content, never by the names the CLI gave
them**, and nothing the CLI wrote ever replaces, or is written through to, a file of the
shared store:

- every directory of the private store is opened without following a link, and every file in
  it is looked at with ``lstat``: a link the CLI planted in its store (a fan-out directory or
  ``pack/`` pointing into the shared store, a file linking to one of its packs) is removed as
  a link, never followed, so the clean-up that empties the private store cannot delete a file
  of the shared one;
- each loose object is read, inflated and hashed (SHA-1, or SHA-256 by the length of its
  name): one whose content does not match its name is dropped and counted, never copied; one
  the store already has is dropped; the rest are written to the shared store as a new file
  that is linked in only where no file of that name exists (``safe_write.create``: an
  existing object is never replaced);
- each pack is checked by ``git index-pack`` (which reads and hashes every object in it) into
  an index of the private store, and git prints the pack's own name, the hash of its
  content. The pack enters the shared ``pack/`` under *that* name, the ``.pack`` before its
  ``.idx`` (git finds packs by their index), each only where no file of that name exists: a
  pack git already has under that name has that very content. The name the CLI chose is
  never used, so a pack named like one of the repository's cannot take its place. One git
  refuses is dropped and counted.

What is left in the private directory afterwards is nothing but its ``info/alternates``.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import re
import stat
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.git.repo import Git
from orchestrator.safety import safe_write

__all__ = ["Adopted", "adopt_objects", "private_store"]

_FANOUT = re.compile(r"^[0-9a-f]{2}$")
_REST = re.compile(r"^(?:[0-9a-f]{38}|[0-9a-f]{62})$")
_PACK_NAME = re.compile(r"^(?:pack\t)?([0-9a-f]{40}|[0-9a-f]{64})$")
_LIMIT = 512 * 1024 * 1024  # a loose object bigger than this is not read whole: dropped
_DIRECTORY = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


@dataclass(frozen=True)
class Adopted:
    objects: int = 0  # loose objects taken in
    packs: int = 0
    refused: tuple[str, ...] = ()  # what was dropped as not what its name says


def private_store(private: Path, shared: Path) -> None:
    """Make ``private`` a store whose alternate is ``shared`` (blocking)."""
    safe_write.make_dirs(private.parent, private / "info")
    alternates = private / "info" / "alternates"
    want = f"{shared}\n".encode()
    try:
        if alternates.read_bytes() == want:
            return
    except OSError:
        pass
    safe_write.write_atomic(private, alternates, want)


def adopt_objects(private: Path, shared: Path, git: Git) -> Adopted:
    """Take what a CLI wrote into ``private`` into ``shared`` (see the module doc)."""
    try:
        top = os.open(private, _DIRECTORY)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOTDIR) and os.path.islink(private):
            _unlink(None, str(private))  # a link where the store was: never followed
        return Adopted()
    taken, refused = 0, []
    packs: tuple[int, list[str]] = (0, [])
    try:
        for name in os.listdir(top):
            if _FANOUT.match(name):
                for result in _take_fanout(top, name, shared):
                    if result is None:
                        taken += 1
                    elif result:
                        refused.append(result)
            elif name == "pack":
                packs = _take_packs(top, private / "pack", shared / "pack", git)
    finally:
        os.close(top)
    return Adopted(taken, packs[0], (*refused, *packs[1]))


def _take_fanout(top: int, fanout: str, shared: Path) -> Iterator[str | None]:
    """Each loose object of one fan-out directory: None taken, '' already there, else why
    it was dropped. The directory is emptied and removed; a link there is removed."""
    directory = _open_dir(top, fanout)
    if directory is None:
        return
    try:
        for name in os.listdir(directory):
            if not _REST.match(name):
                _remove(directory, name)
                continue
            verdict = _take_loose(directory, name, shared / fanout / name, fanout + name, shared)
            yield None if verdict is None else (verdict and f"{fanout}{name}: {verdict}")
    finally:
        os.close(directory)
    _rmdir(top, fanout)


def _take_loose(
    directory: int, name: str, target: Path, object_id: str, shared: Path
) -> str | None:
    """None when taken; '' when the store has it; else why it was dropped."""
    try:
        data = _read_regular(directory, name)
        if data is None:
            return "not a regular file"
        if os.path.lexists(target):
            return ""  # the store has it: git never rewrites an object it has
        try:
            inflated = zlib.decompress(data)
        except zlib.error:
            return "not a zlib stream"
        digest = (hashlib.sha1 if len(object_id) == 40 else hashlib.sha256)(inflated).hexdigest()
        if digest != object_id or b"\0" not in inflated[:64]:
            return "its content is not what its name says"
        safe_write.make_dirs(shared, target.parent)
        safe_write.create(shared, target, data, mode=0o444)
        return None
    except OSError as exc:
        return f"unreadable: {exc}"
    finally:
        _remove(directory, name)


def _read_regular(directory: int, name: str) -> bytes | None:
    """The bytes of ``name`` when it is a regular file of at most ``_LIMIT`` bytes."""
    fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _LIMIT:
            return None
        with os.fdopen(os.dup(fd), "rb") as handle:
            return handle.read()
    finally:
        os.close(fd)


def _take_packs(top: int, private: Path, shared: Path, git: Git) -> tuple[int, list[str]]:
    directory = _open_dir(top, "pack")
    if directory is None:
        return 0, []
    taken, refused = 0, []
    try:
        names = os.listdir(directory)
        for name in sorted(names):
            if not name.endswith(".pack") or not _is_regular(directory, name):
                continue
            verdict = _take_pack(directory, private, name, shared, git)
            if verdict is None:
                taken += 1
            elif verdict:
                refused.append(f"{name}: {verdict}")
        for leftover in os.listdir(directory):
            _remove(directory, leftover)
    finally:
        os.close(directory)
    _rmdir(top, "pack")
    return taken, refused


def _take_pack(directory: int, private: Path, name: str, shared: Path, git: Git) -> str | None:
    """One pack checked by git and linked in under the name git gives its content: None
    taken, '' when the store has that pack already, else why it was dropped."""
    index = f"{name.removesuffix('.pack')}.council-idx"
    _remove(directory, index)  # the CLI's file of that name, a link say: never written through
    checked = git.run_sync(
        "index-pack", "-o", str(private / index), str(private / name), check=False
    )
    found = _PACK_NAME.match(checked.stdout.strip()) if checked.ok else None
    if found is None or not _is_regular(directory, index):
        return checked.stderr.strip()[-200:] or "not a pack"
    stem = f"pack-{found.group(1)}"
    safe_write.make_dirs(shared.parent, shared)
    with safe_write.real_dir(shared.parent, shared) as target:
        if os.path.lexists(shared / f"{stem}.idx"):
            return ""  # git has this pack, by its content's own name
        _link_in(directory, name, target, f"{stem}.pack")
        if not _link_in(directory, index, target, f"{stem}.idx"):
            return ""
    return None


def _link_in(directory: int, name: str, target: int, new: str) -> bool:
    """``name`` (a regular file of the private store) linked into ``target`` as ``new``, or
    copied there where the two are on different file systems; never over an existing file.
    False when ``new`` was there already."""
    try:
        os.link(name, new, src_dir_fd=directory, dst_dir_fd=target, follow_symlinks=False)
        return True
    except FileExistsError:
        return False
    except OSError as exc:
        if exc.errno != errno.EXDEV:
            raise
    temporary = f".{new}.council-copy"
    source = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=directory)
    try:
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        copy = os.open(temporary, flags, 0o444, dir_fd=target)
        try:
            while chunk := os.read(source, 1 << 20):
                os.write(copy, chunk)
        finally:
            os.close(copy)
        try:
            os.link(temporary, new, src_dir_fd=target, dst_dir_fd=target)
        except FileExistsError:
            return False
        return True
    finally:
        os.close(source)
        with contextlib.suppress(OSError):
            os.unlink(temporary, dir_fd=target)


def _open_dir(top: int, name: str) -> int | None:
    """``name`` under ``top`` opened as a directory; a link or a file there is removed."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=top)
    except OSError:
        _remove(top, name)
        return None


def _is_regular(directory: int, name: str) -> bool:
    try:
        return stat.S_ISREG(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _remove(directory: int, name: str) -> None:
    """``name`` unlinked (a link as a link); a directory is left alone."""
    with contextlib.suppress(OSError):
        if not stat.S_ISDIR(os.stat(name, dir_fd=directory, follow_symlinks=False).st_mode):
            os.unlink(name, dir_fd=directory)


def _unlink(directory: int | None, name: str) -> None:
    with contextlib.suppress(OSError):
        os.unlink(name, dir_fd=directory)


def _rmdir(top: int, name: str) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(name, dir_fd=top)
