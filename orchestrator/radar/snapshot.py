"""A live session's work as the radar sees it, read from its worktree without disturbing it.

One ``git diff --merge-base <base> -U0`` in the worktree: the working tree (committed and
uncommitted changes alike) against where the session's branch left the base, so work the base
gained since is not counted as the session's. A diff of the working tree refreshes the index's
stat data and writes it back under ``index.lock`` (``--no-optional-locks`` does not stop
``git diff`` doing so, git 2.39): a CLI's own ``git add`` at that moment would fail. So git reads
a copy of the worktree's index (``GIT_INDEX_FILE``, in a scratch file of the radar's), and
whatever it refreshes is the copy's: the radar never takes the worktree's ``index.lock``. Files
not yet known to git (never added) are not in a diff, so not seen until the phase commit adds
them.

The scratch directory is removed when the look ends; one a killed look left (a ``SIGKILL``, a
machine that lost power) is removed by the next run (``sweep_stale_indexes``, once it is
``STALE_AFTER`` old: a look takes milliseconds), so copies of an index, its paths and their
blob names, do not pile up in the machine's temporary directory.

The tip (a ``merge-tree`` needs committed tips) is read from git's own files without a process
(the worktree's ``HEAD`` and its branch's ref, ``git.ref_files``), and asked of git
(``rev-parse HEAD``) only where those cannot tell exactly: one git process per look at a
session, not two.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import WorkspaceError
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.merge_tree import GitCalls, branch_ref
from orchestrator.git.ref_files import read_refs
from orchestrator.radar.hunks import FileDiff, parse_diff
from orchestrator.safety.scratch import stale_dirs
from orchestrator.safety.untrusted_read import read_regular

__all__ = [
    "DIFF_ARGS",
    "STALE_AFTER",
    "Snapshot",
    "admin_dir",
    "private_index",
    "read_snapshot",
    "sweep_stale_indexes",
]

_SHA = re.compile(r"[0-9a-f]{40}(?:[0-9a-f]{24})?")

DIFF_ARGS = (
    "--no-optional-locks",
    "diff",
    "--no-ext-diff",
    "--no-textconv",
    "--no-color",
    "--no-renames",
    "-U0",
)


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A session's work at one look: its tip, its diff against the base, and the diff's hash
    (what the engine compares to know it moved)."""

    tip: str
    diff: str
    digest: str

    def files(self) -> dict[str, FileDiff]:
        return parse_diff(self.diff)


def read_snapshot(calls: GitCalls, worktree: Path, base_ref: str) -> Snapshot | None:
    """The session's snapshot (blocking: run it in a worker thread); None when its worktree
    is gone or git cannot answer (the session ended under the look)."""
    if not worktree.is_dir():
        return None
    admin = admin_dir(worktree)
    if admin is None:
        return None
    tip = _head(admin)
    if tip is None:
        head = calls.run("--no-optional-locks", "rev-parse", "HEAD", cwd=worktree, check=False)
        if not head.ok:
            return None
        tip = head.out
    with private_index(admin) as env:
        args = (*DIFF_ARGS, "--merge-base", base_ref)
        diff = calls.run(*args, cwd=worktree, check=False, env=env)
    if not diff.ok:
        return None
    digest = hashlib.sha256(f"{tip}\n{diff.stdout}".encode()).hexdigest()
    return Snapshot(tip, diff.stdout, digest)


@contextlib.contextmanager
def private_index(admin: Path) -> Iterator[dict[str, str]]:
    """The environment that points git at a copy of the index of the worktree whose admin
    directory is ``admin`` (blocking), for a read of someone else's worktree (``git diff`` of
    its working tree) that must never take or rewrite its index (module doc)."""
    with tempfile.TemporaryDirectory(prefix=_PREFIX) as scratch:
        index = os.path.join(scratch, "index")
        _copy_index(admin, index)
        yield {"GIT_INDEX_FILE": index}


_PREFIX = "council-index-"
STALE_AFTER = 600.0  # seconds: a scratch index older than this was left by a look that died


def sweep_stale_indexes(root: str | None = None, *, older_than: float = STALE_AFTER) -> int:
    """Remove the scratch indexes of this user's looks that died before removing theirs, once
    ``older_than`` seconds old (module doc); how many went. Blocking: a worker thread's."""
    stale = stale_dirs(root or tempfile.gettempdir(), _PREFIX, older_than)
    for directory in stale:
        shutil.rmtree(directory, ignore_errors=True)
    return len(stale)


_LINE = 4096  # a HEAD or commondir line git writes: a ref's name, a path


def admin_dir(worktree: Path) -> Path | None:
    """The worktree's git admin directory (its ``.git`` file's target, or the main checkout's
    ``.git``); None when it has none (removed under the look)."""
    dot_git = worktree / ".git"
    return dot_git if dot_git.is_dir() else read_gitfile(worktree)


def _head(admin: Path) -> str | None:
    """The commit the worktree's ``HEAD`` names, from git's files; None when they cannot tell
    exactly (then git is asked)."""
    try:  # files of the CLI's admin dir: read as it cannot make them wait (``untrusted_read``)
        raw = read_regular(admin / "HEAD", _LINE)
        pointer = read_regular(admin / "commondir", _LINE)
        if raw is None or len(raw) > _LINE or (pointer is not None and len(pointer) > _LINE):
            return None
        head = raw.decode("utf-8").strip()
        common = admin if pointer is None else admin / pointer.decode("utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    if _SHA.fullmatch(head):
        return head  # a detached HEAD
    if not head.startswith("ref: refs/heads/"):
        return None
    ref = head.removeprefix("ref: ")
    try:
        branch_ref(ref)  # a name a CLI wrote: no ``..`` out of the refs directory
    except WorkspaceError:
        return None
    found = read_refs(Path(os.path.normpath(common)), (ref,))
    return None if found is None else found.get(ref)


def _copy_index(admin: Path, target: str) -> None:
    """The worktree's index copied to ``target`` (git replaces an index by renaming a new one
    over it, so the copy is one whole version); none yet: git reads an empty one. The copy
    keeps the index's mtime: git takes an entry changed in the same second as the index was
    written for "racily clean" and reads its content, where a copy dated now would make it
    trust the entry's stat data and miss an edit of the same size made in that second."""
    with contextlib.suppress(FileNotFoundError):
        shutil.copy2(admin / "index", target)
