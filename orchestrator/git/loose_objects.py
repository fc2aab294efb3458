"""A commit object written as ``git commit-tree`` writes it, without a process.

Each task makes two commits by ``commit-tree`` (its build's and its landing's merge), each a
process that costs more to start than the few hundred bytes it writes. A commit is a loose
object: ``commit <size>\\0`` and its text, zlib-compressed, stored at
``objects/<first two hex digits>/<the other 38>`` of its SHA-1, where git finds it like any
other. The text is exactly ``commit-tree``'s (``builtin/commit-tree.c``,
``commit_tree_extended``): ``tree``, one ``parent`` line each, ``author`` and ``committer``
(``Name <email> <seconds> <zone>``, both at one time, as one git process stamps them), a
blank line and the message ending in a newline (``-m``). The object is written as a finished
temporary file linked to its name, which never replaces anything and never follows a link
(``safe_write.create``); one that is there already is the same object.

None (the caller runs git) wherever this cannot be exactly what git writes: an identity not
given in the environment or one git would clean up, a date given (``GIT_*_DATE``), another
object store (``GIT_OBJECT_DIRECTORY``), a config this reader does not judge or that changes
the object or how it is stored (``include``, ``i18n.commitEncoding``, ``extensions``'s object
format, ``core.sharedRepository``, ``core.fsync``...), a tree that is not a loose object here,
a parent whose loose object is no commit. Each write passes the crash point a git process would
(``git.ran``, ``commit-tree``).
"""

from __future__ import annotations

import hashlib
import os
import re
import time
import zlib
from collections.abc import Mapping, Sequence
from pathlib import Path

from orchestrator.errors import PathEscapeError
from orchestrator.git.config_files import plain_config
from orchestrator.git.ref_files import loose_commit
from orchestrator.safety import safe_write
from orchestrator.safety.crashpoints import crash_point

__all__ = ["write_commit"]

_OID = re.compile(r"[0-9a-f]{40}")
_CRUD = set(".,:;<>\"\\'")
# Settings that change a commit's bytes or how a loose object is stored: git is asked.
_STEERING = ("commitencoding", "objectformat", "sharedrepository", "fsync", "compression")
_ENV_STEERING = ("GIT_AUTHOR_DATE", "GIT_COMMITTER_DATE", "GIT_OBJECT_DIRECTORY", "GIT_DIR")


def write_commit(
    common: Path, tree: str, parents: Sequence[str], message: str, env: Mapping[str, str]
) -> str | None:
    """``git commit-tree --no-gpg-sign <tree> -p <parent>... -m <message>`` with the identity
    of ``env`` (``GIT_AUTHOR_*``, ``GIT_COMMITTER_*``), in the object store of the git
    common dir ``common`` (blocking): the commit's id, or None where git must be asked
    (module doc)."""
    try:
        if any(name in env for name in _ENV_STEERING):
            return None
        if not _OID.fullmatch(tree) or not all(_OID.fullmatch(p) for p in parents):
            return None
        config = plain_config(common, env)
        if config is None or any(word in config for word in _STEERING):
            return None
        if not os.path.isfile(_object_path(common, tree)) or not _commits(common, parents):
            return None
        stamp = _stamp()
        author = _ident(env, "AUTHOR")
        committer = _ident(env, "COMMITTER")
        if author is None or committer is None:
            return None
        text = f"tree {tree}\n" + "".join(f"parent {p}\n" for p in parents)
        text += f"author {author} {stamp}\ncommitter {committer} {stamp}\n\n{message}"
        if not text.endswith("\n"):
            text += "\n"
        body = text.encode("utf-8")
        raw = b"commit %d\0" % len(body) + body
        oid = hashlib.sha1(raw, usedforsecurity=False).hexdigest()
        path = _object_path(common, oid)
        if not os.path.lexists(path):
            safe_write.make_dirs(common, path.parent)
            safe_write.create(common, path, zlib.compress(raw, 1), mode=0o444)
        elif not os.path.isfile(path) or os.path.islink(path):
            return None
    except (PathEscapeError, OSError, UnicodeEncodeError):
        return None
    crash_point("git.ran", "commit-tree")
    return oid


def _object_path(common: Path, oid: str) -> Path:
    return common / "objects" / oid[:2] / oid[2:]


def _commits(common: Path, parents: Sequence[str]) -> bool:
    """No parent is a loose object that is not a commit (a packed one is taken as given: the
    callers' parents are commits they read from git)."""
    for parent in parents:
        if os.path.exists(_object_path(common, parent)) and loose_commit(common, parent) is None:
            return False
    return True


def _ident(env: Mapping[str, str], who: str) -> str | None:
    """``Name <email>`` as git writes it, None where git would clean it up or ask config."""
    name, email = env.get(f"GIT_{who}_NAME"), env.get(f"GIT_{who}_EMAIL")
    if not name or not email:
        return None
    for value in (name, email):
        if any(c in value for c in "<>\n") or _crud(value[0]) or _crud(value[-1]):
            return None
    return f"{name} <{email}>"


def _crud(char: str) -> bool:
    return ord(char) <= 32 or char in _CRUD


def _stamp() -> str:
    """``<seconds> <zone>`` now, as git's ``datestamp`` writes it."""
    now = time.time()
    offset = time.localtime(now).tm_gmtoff // 60
    sign = "+" if offset >= 0 else "-"
    return f"{int(now)} {sign}{abs(offset) // 60:02d}{abs(offset) % 60:02d}"
