"""Refs read from git's own files, without starting a git process.

The orchestrator asks for a few refs before and after every CLI session (the tamper check's
snapshot) and when it makes a session's branch; a ``git for-each-ref`` for each costs a process
start, more than the answer. Git's "files" ref storage is simple and updated atomically: a loose
ref is a file ``<common dir>/<refname>`` holding an object id, written by a rename; packed refs
are lines ``<id> <refname>`` of ``<common dir>/packed-refs``, also replaced by a rename, and a
loose ref wins over a packed one. Reading the loose files first and ``packed-refs`` second is
the order git itself reads them in, and ``git pack-refs`` writes ``packed-refs`` before it
deletes the loose files, so a ref being packed meanwhile is never missed.

``read_refs`` answers None (the caller then asks git) whenever it cannot answer exactly: a
reftable repository (``extensions.refStorage``), a symbolic ref among those asked for, a file
that is not an object id, or a directory it cannot read.
"""

from __future__ import annotations

import hashlib
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path

__all__ = [
    "commit_parents",
    "first_parents_merged",
    "first_parents_reach",
    "loose_commit",
    "read_refs",
]

_OID = re.compile(rb"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_COMMIT_MOST = 1 << 20  # a loose commit larger than this, inflated, is left to git


class _Unreadable(Exception):
    """The refs cannot be read exactly from the files (the caller asks git)."""


def read_refs(common_dir: Path, patterns: Sequence[str]) -> dict[str, str] | None:
    """Every ref matching ``patterns`` (as ``git for-each-ref`` matches them: a pattern is a
    whole ref name or the name of a hierarchy, ``refs/heads/council`` matching
    ``refs/heads/council/t1/1``) and its object id; None when they cannot be read exactly
    from the files. Blocking (a worker thread)."""
    try:
        if (common_dir / "reftable").exists():
            return None
        found: dict[str, str] = {}
        for pattern in patterns:
            _loose(common_dir, pattern.rstrip("/"), found)
        packed = _packed(common_dir)
    except _Unreadable:
        return None
    for name, oid in packed.items():
        if name not in found and any(_matches(name, p.rstrip("/")) for p in patterns):
            found[name] = oid
    return found


def _matches(name: str, pattern: str) -> bool:
    return name == pattern or name.startswith(pattern + "/")


def _loose(common_dir: Path, pattern: str, found: dict[str, str]) -> None:
    path = common_dir / pattern
    try:
        if path.is_dir():
            _walk(str(path), path.relative_to(common_dir).as_posix(), found)
            return
        data = path.read_bytes()
    except FileNotFoundError:
        return
    except OSError as exc:
        raise _Unreadable(str(exc)) from exc
    found[pattern] = _oid(data)


def _walk(directory: str, prefix: str, found: dict[str, str]) -> None:
    """The loose refs under ``directory``, the hierarchy named ``prefix``. Plain strings:
    this runs on every read of a task's refs, and a path object per ref costs more than its
    file's read."""
    try:
        entries = list(os.scandir(directory))
    except FileNotFoundError:
        return  # removed meanwhile: what it held is in packed-refs, or gone
    except OSError as exc:
        raise _Unreadable(str(exc)) from exc
    for entry in entries:
        if entry.name.endswith(".lock") or entry.name.startswith("."):
            continue  # a ref being written: its old value is still the file beside it
        name = f"{prefix}/{entry.name}"
        if entry.is_dir(follow_symlinks=False):
            _walk(entry.path, name, found)
            continue
        try:
            with open(entry.path, "rb") as file:
                data = file.read()
        except FileNotFoundError:
            continue  # deleted (or packed) meanwhile
        except OSError as exc:
            raise _Unreadable(str(exc)) from exc
        found[name] = _oid(data)


def _oid(data: bytes) -> str:
    value = data.strip()
    if not _OID.fullmatch(value):
        raise _Unreadable("not an object id (a symbolic ref, or damage)")
    return value.decode()


def _packed(common_dir: Path) -> dict[str, str]:
    try:
        text = (common_dir / "packed-refs").read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise _Unreadable(str(exc)) from exc
    refs: dict[str, str] = {}
    for line in text.splitlines():
        if not line or line.startswith((b"#", b"^")):
            continue  # the header, or the peeled value of the tag above
        oid, _, name = line.partition(b" ")
        if not _OID.fullmatch(oid) or not name:
            raise _Unreadable("packed-refs holds a line that is not <id> <ref>")
        refs[name.decode()] = oid.decode()
    return refs


def commit_parents(common_dir: Path, oid: str) -> list[str] | None:
    """The parents of commit ``oid`` read from its loose object file (a commit the orchestrator
    just wrote, such as a merge, is one); None when it is not a loose commit here (packed, in
    an alternate object store, or not a commit): the caller asks git. Blocking."""
    found = loose_commit(common_dir, oid)
    return None if found is None else found[1]


def loose_commit(common_dir: Path, oid: str) -> tuple[str, list[str]] | None:
    """The tree and parents of commit ``oid`` from its loose object file, whose bytes must hash
    to ``oid``; None as for ``commit_parents``."""
    if not _OID.fullmatch(oid.encode()):
        return None
    path = common_dir / "objects" / oid[:2] / oid[2:]
    inflate = zlib.decompressobj()
    try:
        raw = inflate.decompress(path.read_bytes(), _COMMIT_MOST)
    except (OSError, zlib.error):
        return None
    hashed = hashlib.new("sha1" if len(oid) == 40 else "sha256", raw, usedforsecurity=False)
    if not inflate.eof or hashed.hexdigest() != oid:
        # Larger than a commit is, or not what its name says (a file planted at a packed
        # commit's path): git, which reads a pack first, answers.
        return None
    header, _, body = raw.partition(b"\0")
    if not header.startswith(b"commit "):
        return None
    tree: str | None = None
    parents: list[str] = []
    for line in body.split(b"\n"):
        if line.startswith(b"tree ") and tree is None:
            tree = line[5:].decode("ascii", "replace")
        elif line.startswith(b"parent "):
            parents.append(line[7:].decode("ascii", "replace"))
        else:
            break  # the tree and the parents come first, before the author
    if tree is None or not _OID.fullmatch(tree.encode()):
        return None
    return tree, parents


def first_parents_reach(
    common_dir: Path, tip: str, ancestor: str, *, unseen: str, limit: int = 256
) -> bool:
    """True when walking ``tip``'s first parents through loose commits reaches ``ancestor``
    within ``limit`` steps, and no commit on the way names ``unseen`` as a parent: ``ancestor``
    is then in ``tip``'s history and ``unseen`` (a commit just made) is not merged into the way
    there. False when the files cannot show it (a packed commit, the walk too long): only a
    True answers, a False means "ask git". A base branch that only the orchestrator's merges
    moved since ``ancestor`` is such a chain of loose commits. Blocking."""
    for at, parents in _first_parent_line(common_dir, tip, limit):
        if at == unseen:
            return False
        if at == ancestor:
            return True
        if not parents or unseen in parents:
            return False
    return False


def first_parents_merged(
    common_dir: Path, tip: str, commit: str, *, stop: str | None = None, limit: int = 256
) -> bool:
    """True when ``commit`` is on ``tip``'s first-parent line or a parent of a commit on it
    (merged there), as loose commits show within ``limit`` steps: ``tip`` then contains
    ``commit``. The walk gives up at ``stop`` (where ``commit`` was forked from: no merge of it
    comes before that), at a packed commit or at the limit; only a True answers, a False
    means "ask git". Blocking."""
    for at, parents in _first_parent_line(common_dir, tip, limit):
        if at == commit:
            return True
        if at == stop or not parents:
            return False
        if commit in parents:
            return True
    return False


def _first_parent_line(
    common_dir: Path, tip: str, limit: int
) -> Iterator[tuple[str, list[str] | None]]:
    """``tip`` and its first parents, at most ``limit + 1``, each with its parents as its
    loose file has them (None where there is none: a packed or missing commit, where the
    line ends)."""
    at = tip
    for _ in range(limit + 1):
        found = loose_commit(common_dir, at)
        parents = found[1] if found is not None else None
        yield at, parents
        if not parents:
            return
        at = parents[0]
