"""What a move between two trees adds and deletes, read from git's loose objects, without a
git process.

A landing's fast-forward of the base's checkout first asks which paths it would create
(``merge.checkout.untracked_in_the_way``): ``git diff-tree -r --no-renames --name-status
--diff-filter=AD <base> <tree>``. The trees a landing compares are mostly loose objects: the
merged tree ``merge-tree --write-tree`` just wrote, and the base's, which the landing before
wrote the same way; subtrees both sides share have the same id and are never read.
``added_and_deleted`` answers that question from those files, in git's order: both trees
walked together by git's tree order (an entry named as a directory sorts as ``name/``), a
directory on both sides entered only where its ids differ, a path on one side only added or
deleted (a whole directory: each file under it), a path on both sides with another content,
mode or type neither. Paths are decoded as ``git.repo`` decodes git's output.

It answers None (the caller asks git) whenever the files cannot tell exactly: an object that
is not loose (packed), not a tree, larger than ``MOST_BYTES``, or does not parse. Blocking.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from pathlib import Path

__all__ = ["MOST_BYTES", "TreeMoves", "added_and_deleted", "loose_tree"]

MOST_BYTES = 4 << 20  # a tree object read from its file at most (larger: git is asked)
_OID = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")
_TREE = b"40000"
_MODE = re.compile(rb"[0-7]{5,6}")


class _Unknown(Exception):
    """The files cannot tell (the caller asks git)."""


@dataclass(frozen=True)
class _Entry:
    name: bytes
    mode: bytes
    oid: str

    @property
    def is_tree(self) -> bool:
        return self.mode == _TREE


@dataclass
class TreeMoves:
    """The paths a move from one tree to another adds and deletes, each in git's order."""

    added: list[str] = field(default_factory=list)
    deleted: list[str] = field(default_factory=list)


def added_and_deleted(common_dir: Path, old: str, new: str) -> TreeMoves | None:
    """What ``git diff-tree -r --no-renames --name-status --diff-filter=AD old new`` says of
    two trees (module doc); None when the loose objects cannot tell it exactly."""
    moves = TreeMoves()
    try:
        _compare(common_dir, old, new, b"", moves)
    except _Unknown:
        return None
    return moves


def loose_tree(common_dir: Path, oid: str) -> list[tuple[bytes, bytes, str]] | None:
    """The entries (name, mode, id) of tree ``oid`` from its loose object file, in the order
    the tree holds them; None when that file cannot tell them (module doc)."""
    try:
        return [(e.name, e.mode, e.oid) for e in _entries(common_dir, oid)]
    except _Unknown:
        return None


def _compare(common_dir: Path, old: str, new: str, prefix: bytes, moves: TreeMoves) -> None:
    if old == new:
        return
    before = {_key(e): e for e in _entries(common_dir, old)}
    after = {_key(e): e for e in _entries(common_dir, new)}
    for key in sorted(before.keys() | after.keys()):
        was, now = before.get(key), after.get(key)
        if was is not None and now is not None:
            if was.is_tree and was.oid != now.oid:
                _compare(common_dir, was.oid, now.oid, prefix + was.name + b"/", moves)
            continue  # the same, or another content, mode or type: neither added nor deleted
        entry = was if was is not None else now
        assert entry is not None
        into = moves.deleted if was is not None else moves.added
        _every_file(common_dir, entry, prefix, into)


def _every_file(common_dir: Path, entry: _Entry, prefix: bytes, into: list[str]) -> None:
    if not entry.is_tree:
        into.append((prefix + entry.name).decode("utf-8", "replace"))  # as ``git.repo`` reads
        return
    for inner in sorted(_entries(common_dir, entry.oid), key=_key):
        _every_file(common_dir, inner, prefix + entry.name + b"/", into)


def _key(entry: _Entry) -> bytes:
    """An entry as git's tree order sees it: a directory's name with a slash after it."""
    return entry.name + b"/" if entry.is_tree else entry.name


def _entries(common_dir: Path, oid: str) -> list[_Entry]:
    if not _OID.fullmatch(oid):
        raise _Unknown
    path = common_dir / "objects" / oid[:2] / oid[2:]
    try:
        inflate = zlib.decompressobj()
        raw = inflate.decompress(path.read_bytes(), MOST_BYTES + 64)
    except (OSError, zlib.error):
        raise _Unknown from None
    if not inflate.eof:
        raise _Unknown  # larger than we read, or cut short
    header, _, body = raw.partition(b"\0")
    if not header.startswith(b"tree ") or header[5:] != str(len(body)).encode():
        raise _Unknown
    width = len(oid) // 2
    entries: list[_Entry] = []
    at = 0
    while at < len(body):
        space = body.find(b" ", at)
        end = body.find(b"\0", space + 1)
        if space < 0 or end < 0 or end + 1 + width > len(body):
            raise _Unknown
        mode, raw_name = body[at:space], body[space + 1 : end]
        if not _MODE.fullmatch(mode) or not raw_name:
            raise _Unknown
        entries.append(_Entry(raw_name, mode, body[end + 1 : end + 1 + width].hex()))
        at = end + 1 + width
    return entries
