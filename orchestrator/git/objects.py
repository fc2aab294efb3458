"""A sandboxed CLI's own object store, and taking what it wrote into the repository's.

Under the sandbox a CLI's git writes new objects to a private directory
(``GIT_OBJECT_DIRECTORY``, with the repository's store as its alternate), and sees the shared
store read-only: no CLI can delete a pack or a loose object of anyone else's history, nor plant
a corrupt object under the name of one another session will write later (git never rewrites an
object it finds present).

``adopt_objects(private, shared, git)`` (blocking) moves what the CLI wrote into the shared
store once it has exited, before any other git command looks at its commits:

- each loose object is read, inflated and hashed (SHA-1, or SHA-256 by the length of its
  name): one whose content does not match its name is dropped and counted, never copied; one
  the store already has is dropped; the rest are written to the shared store (temp file,
  rename, read-only like git's own);
- each pack is indexed anew by ``git index-pack`` (which checks every object in it) into the
  shared store's ``pack/``, the ``.pack`` before its ``.idx`` (git finds packs by their index);
  one git refuses is dropped and counted.

What is left in the private directory afterwards is nothing but its ``info/alternates``.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import zlib
from dataclasses import dataclass
from pathlib import Path

from orchestrator.git.repo import Git
from orchestrator.safety import safe_write

__all__ = ["Adopted", "adopt_objects", "private_store"]

_FANOUT = re.compile(r"^[0-9a-f]{2}$")
_REST = re.compile(r"^(?:[0-9a-f]{38}|[0-9a-f]{62})$")
_LIMIT = 512 * 1024 * 1024  # a loose object bigger than this is not read whole: dropped


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
    """Move what a CLI wrote into ``private`` into ``shared`` (see the module doc)."""
    try:
        fanouts = [name for name in os.listdir(private) if _FANOUT.match(name)]
    except FileNotFoundError:
        return Adopted()
    taken, refused = 0, []
    for fanout in fanouts:
        directory = private / fanout
        try:
            names = os.listdir(directory)
        except NotADirectoryError:
            continue
        for name in names:
            source = directory / name
            if not _REST.match(name) or os.path.islink(source):
                _drop(source)
                continue
            verdict = _take_loose(source, shared / fanout / name, fanout + name, shared)
            if verdict is None:
                taken += 1
            elif verdict:
                refused.append(f"{fanout}{name}: {verdict}")
        _rmdir(directory)
    packs, pack_refusals = _take_packs(private / "pack", shared / "pack", git)
    return Adopted(taken, packs, (*refused, *pack_refusals))


def _take_loose(source: Path, target: Path, name: str, shared: Path) -> str | None:
    """None when taken (or already there); else why it was dropped ('' when already there)."""
    try:
        if os.lstat(source).st_size > _LIMIT:
            return "too large to check"
        data = source.read_bytes()
    except OSError as exc:
        return f"unreadable: {exc}"
    try:
        if os.path.lexists(target):
            return ""  # the store has it: git never rewrites an object it has
        try:
            inflated = zlib.decompress(data)
        except zlib.error:
            return "not a zlib stream"
        digest = (hashlib.sha1 if len(name) == 40 else hashlib.sha256)(inflated).hexdigest()
        if digest != name or b"\0" not in inflated[:64]:
            return "its content is not what its name says"
        safe_write.make_dirs(shared, target.parent)
        safe_write.write_atomic(shared, target, data, mode=0o444)
        return None
    finally:
        _drop(source)


def _take_packs(private: Path, shared: Path, git: Git) -> tuple[int, list[str]]:
    try:
        packs = sorted(name for name in os.listdir(private) if name.endswith(".pack"))
    except FileNotFoundError:
        return 0, []
    taken, refused = 0, []
    for name in packs:
        source = private / name
        index = private / f"{name.removesuffix('.pack')}.council-idx"
        checked = git.run_sync("index-pack", "-o", str(index), str(source), check=False)
        if checked.ok and not os.path.islink(source):
            safe_write.make_dirs(shared.parent, shared)
            stem = name.removesuffix(".pack")
            os.replace(source, shared / name)
            os.replace(index, shared / f"{stem}.idx")
            taken += 1
        else:
            refused.append(f"{name}: {checked.stderr.strip()[-200:] or 'not a pack'}")
    for leftover in os.listdir(private):
        _drop(private / leftover)
    _rmdir(private)
    return taken, refused


def _drop(path: Path) -> None:
    try:
        if os.path.isdir(path) and not os.path.islink(path):
            return
        os.unlink(path)
    except OSError:
        pass


def _rmdir(path: Path) -> None:
    with contextlib.suppress(OSError):
        os.rmdir(path)
