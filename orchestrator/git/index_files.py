"""Whether a checkout's tracked files are as its HEAD has them, read from git's index without
a process: what ``git status --untracked-files=no`` would answer with nothing to list.

Before a fast-forward of the base's checkout the merge queue asks whether it holds changes
(``merge.checkout``). Git answers from the index (``read-cache.c``): an entry whose file's stat
data (times, inode, owner, size, type and executable bit) equal what the index recorded, and
that was not changed in the second the index was written ("racily clean"), is unchanged
without its bytes being read; and the index's cache tree (its ``TREE`` extension), where its
root is valid, names the tree the index holds, which is HEAD's exactly when nothing is staged.
``clean`` does that reading: True only when every entry's stat data match, none is racy, and
the root of the cache tree is HEAD's tree. Anything else is None and git is asked, whose answer
stands: an entry changed, missing, racy, in conflict, flagged (skip-worktree, intent-to-add), a
submodule; an index of another version, split, sparse, or whose checksum does not match; no
valid cache tree; HEAD not a loose commit here; a config that changes how git compares
(``core.checkStat``, ``trustCtime``, ``fileMode``, ``symlinks``, ``ignoreStat``, line endings,
attributes...). An entry changed in the second the index was written (what a fast-forward just
wrote), or whose recorded size git zeroed for that reason, has its bytes hashed and compared
with its blob, as git does; no conversion applies where no attributes file is tracked and no
line-ending setting is made. It never says a checkout is dirty: that is git's to say, with
what it lists.
"""

from __future__ import annotations

import hashlib
import os
import stat
import struct
from collections.abc import Mapping
from pathlib import Path

from orchestrator.git.config_files import plain_config
from orchestrator.git.ref_files import loose_commit, read_refs

__all__ = ["clean"]

_ENTRY = struct.Struct(">10I20sH")  # ctime s ns, mtime s ns, dev, ino, mode, uid, gid, size
_STEERING = (
    "checkstat", "trustctime", "ignorestat", "symlinks", "splitindex", "sparse",
    "fsmonitor", "ignorecase", "precompose", "skiphash", "worktreeconfig", "autocrlf", "eol",
    "attributesfile", "bigfilethreshold", "objectformat",
)  # fmt: skip
_MOST = 64 << 20  # an index larger than this is left to git
_REFUSED = frozenset({b"", b".", b".."})  # path components git never checks out


class _Unsure(Exception):
    """Git is asked."""


def clean(checkout: Path, admin: Path, common: Path, env: Mapping[str, str]) -> bool | None:
    """True when the tracked files of ``checkout`` (git dir ``admin``, common dir ``common``)
    are exactly its HEAD's as git's index shows without reading them; None: ask git (module
    doc). Blocking."""
    try:
        config = plain_config(common, env)
        if config is None or any(word in config for word in _STEERING):
            return None
        if any("filemode" in line and line.split() != ["filemode", "=", "true"]
               for line in config.splitlines()):  # fmt: skip
            return None  # ``git init`` writes ``filemode = true``; anything else, git reads
        if admin != common and os.path.lexists(admin / "config.worktree"):
            return None
        attributes = common / "info" / "attributes"
        if os.path.lexists(attributes) and os.path.getsize(attributes):
            return None
        index = admin / "index"
        info = os.lstat(index)
        if not stat.S_ISREG(info.st_mode) or info.st_size > _MOST:
            return None
        data = index.read_bytes()
        root_tree = _entries_clean(checkout, data, (int(info.st_mtime), info.st_mtime_ns % 10**9))
        head = _head_tree(admin, common)
        return True if head is not None and root_tree == head else None
    except (_Unsure, OSError, ValueError, struct.error):
        return None


def _entries_clean(checkout: Path, data: bytes, written: tuple[int, int]) -> str:
    """Every entry of the index ``data`` checked against its file; the root tree its cache
    tree names. ``_Unsure`` at the first doubt."""
    if len(data) < 32 or data[:4] != b"DIRC":
        raise _Unsure("not an index")
    body, checksum = data[:-20], data[-20:]
    if hashlib.sha1(body, usedforsecurity=False).digest() != checksum:
        raise _Unsure("checksum")
    version, count = struct.unpack(">II", data[4:12])
    if version not in (2, 3):
        raise _Unsure("index version")
    at = 12
    real_dirs: set[bytes] = set()  # directories seen to be directories, not links
    # Byte paths from here: an index of thousands of entries is read before every
    # fast-forward, and a path object per entry would cost more than its ``lstat``.
    base = os.fsencode(checkout) + b"/"
    for _ in range(count):
        fields = _ENTRY.unpack_from(body, at)
        ctime, ctime_ns, mtime, mtime_ns, _dev, ino, mode, uid, gid, size, _oid, flags = fields
        header = at + _ENTRY.size
        if flags & 0x3000:
            raise _Unsure("an entry in conflict")
        if flags & 0x4000:
            if version < 3 or struct.unpack_from(">H", body, header)[0]:
                raise _Unsure("an entry flagged skip-worktree or intent-to-add")
            header += 2
        length = flags & 0x0FFF
        if length == 0x0FFF:
            raise _Unsure("a long path name")
        name = body[header : header + length]
        at += ((header - at) + length + 8) // 8 * 8
        if mode not in (0o100644, 0o100755, 0o120000):
            raise _Unsure("a submodule or an odd mode")
        parts = name.split(b"/")
        if not name or any(p in _REFUSED or p.lower() == b".git" for p in parts):
            raise _Unsure("a path git itself refuses")  # never a file outside the checkout
        if name == b".gitattributes" or name.endswith(b"/.gitattributes"):
            raise _Unsure("attributes: a file's bytes may not be its blob's")
        # A directory joins ``real_dirs`` only after every one above it did: an entry whose
        # parent is there has nothing left to check on the way.
        if len(parts) > 1 and name.rpartition(b"/")[0] not in real_dirs:
            for depth in range(1, len(parts)):
                directory = b"/".join(parts[:depth])
                if directory not in real_dirs:
                    if not stat.S_ISDIR(os.lstat(base + directory).st_mode):
                        raise _Unsure("a link on the way: git calls the entry deleted")
                    real_dirs.add(directory)
        path = base + name
        seen = os.lstat(path)
        racy = (mtime, mtime_ns) >= written if mtime_ns else mtime >= written[0]
        if racy or size == 0:
            # Changed in the second the index was written, or its size zeroed by git for
            # that reason when it wrote the index ("smudged"): its stat data cannot tell, so
            # its bytes are hashed and compared with the entry's blob, as git does.
            if not _same_mode(seen.st_mode, mode) or _blob_id(path, seen) != _oid.hex():
                raise _Unsure("a racy entry whose bytes differ")
            continue
        if not (
            _same_time(seen.st_mtime_ns, mtime, mtime_ns)
            and _same_time(seen.st_ctime_ns, ctime, ctime_ns)
            and seen.st_ino & 0xFFFFFFFF == ino
            and seen.st_uid == uid
            and seen.st_gid == gid
            and seen.st_size & 0xFFFFFFFF == size
            and _same_mode(seen.st_mode, mode)
        ):
            raise _Unsure("stat data differ")
    return _root_tree(body, at)


def _blob_id(path: bytes, seen: os.stat_result) -> str:
    """The blob id of the file (or link) at ``path``, with no conversion (none is configured:
    ``_STEERING``, and no attributes file is tracked)."""
    if stat.S_ISLNK(seen.st_mode):
        data = os.readlink(path)
    else:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        with os.fdopen(fd, "rb") as file:
            data = file.read(_MOST + 1)
        if len(data) > _MOST:
            raise _Unsure("a large racy file")
    return hashlib.sha1(b"blob %d\0" % len(data) + data, usedforsecurity=False).hexdigest()


def _same_time(seen_ns: int, sec: int, nsec: int) -> bool:
    """As git compares: the seconds, and the nanoseconds where the index recorded them."""
    if seen_ns // 10**9 & 0xFFFFFFFF != sec:
        return False
    return nsec == 0 or seen_ns % 10**9 == nsec


def _same_mode(seen: int, mode: int) -> bool:
    if mode == 0o120000:
        return stat.S_ISLNK(seen)
    return stat.S_ISREG(seen) and bool(seen & 0o100) == (mode == 0o100755)


def _root_tree(body: bytes, at: int) -> str:
    """The tree the root of the index's cache tree (``TREE``) names."""
    while at + 8 <= len(body):
        signature, size = body[at : at + 4], struct.unpack_from(">I", body, at + 4)[0]
        if signature == b"TREE":
            ext = body[at + 8 : at + 8 + size]
            path, _, rest = ext.partition(b"\0")
            counts, _, rest = rest.partition(b"\n")
            entries = int(counts.split(b" ")[0])
            if path or entries < 0 or len(rest) < 20:
                raise _Unsure("no valid cache tree")
            return rest[:20].hex()
        if signature in (b"link", b"sdir"):
            raise _Unsure("a split or sparse index")
        at += 8 + size
    raise _Unsure("no cache tree")


def _head_tree(admin: Path, common: Path) -> str | None:
    """The tree of the commit HEAD names, from git's files (a loose commit)."""
    head = (admin / "HEAD").read_text(encoding="ascii").strip()
    if head.startswith("ref: refs/"):
        ref = head.removeprefix("ref: ")
        found = read_refs(common, (ref,))
        oid = None if found is None else found.get(ref)
    else:
        oid = head
    if not oid:
        return None
    commit = loose_commit(common, oid)
    return None if commit is None else commit[0]
