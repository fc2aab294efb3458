"""Git's setup, sealed for a run: checked against the run's snapshot before every git command.

Whatever a repository's config, ``info/attributes`` or a worktree's ``.git`` file names runs in
every git command started there: a clean filter on ``git add``, a textconv on ``git diff``, an
ssh command on ``git push``, a whole other git dir through a redirected ``.git`` file. A CLI
runs as the user and, without a sandbox, can write all of those. So the orchestrator's git
never trusts what it finds: each repository the orchestrator works in is *sealed*
(``seal_repository``, by the worktree manager once its setup is made), which snapshots, byte
for byte,

- the common ``config``, the main checkout's ``config.worktree`` and ``info/attributes``;
- for every worktree the orchestrator made (``expect_worktree``), its ``.git`` file and its
  admin dir's ``commondir``, ``gitdir`` and ``config.worktree``,

and ``Git.run_sync`` calls ``check(cwd)`` before starting any git process in that repository
or one of its worktrees: a few ``stat`` calls when nothing changed (the signature of each file
is compared first), and when one did, its bytes. A file that differs from the snapshot is put
back before git starts, the changed one kept beside it (``<name>.council-tampered-<stamp>``,
inert: git reads only exact names), and the restore is written in the journal
(``restored_since``), where the tamper guard reads what happened during a CLI's session.

The orchestrator's own changes to these files (``git config extensions.worktreeConfig``, a
sparse worktree's ``config.worktree``) are taken into the snapshot right after the git command
that made them (``refresh_after``: of the repository's own files and those of the worktree the
command ran in or names, a file whose signature moved is read again, the rest kept; another
worktree's change is never taken in that way).

Under the sandbox (``orchestrator.sandbox``) a CLI cannot write any of these files, so this
check never fires there. Without a sandbox it closes every path the orchestrator's git takes,
but not a race: a CLI writing between the check and git's read of the file wins. That is the
one escape left open without a sandbox, and why the sandbox is on by default where the
machine has one.

Hooks and fsmonitor are not part of the seal: ``orchestrator.git.repo`` turns them off on the
command line of every git command, which overrides any config.
"""

from __future__ import annotations

import errno
import os
import secrets
import stat
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.errors import PathEscapeError
from orchestrator.git.config_text import describe_change
from orchestrator.safety import safe_write

__all__ = [
    "Restored",
    "admit",
    "check",
    "covers",
    "expect_worktree",
    "forget_worktree",
    "refresh_after",
    "restored_since",
    "seal_repository",
    "unseal_repository",
]

ASIDE = ".council-tampered-"
_JOURNAL = 500
_CAP = 1024 * 1024
_SETUP_WORDS = frozenset({"config", "worktree", "sparse-checkout", "remote", "submodule"})

Signature = tuple[int, int, int, int]  # st_ino, st_size, st_mtime_ns, st_mode; zeros: absent


@dataclass(frozen=True)
class Restored:
    """One file put back before a git command: when (``time.monotonic``), what, where."""

    when: float
    path: Path
    what: str  # for a human: "config: restored; the changed one kept as config.council-..."
    worktree: Path | None  # the worktree it belongs to, when it is one worktree's own file


@dataclass
class _Sealed:
    path: Path
    data: bytes | None  # None: the file must not exist
    signature: Signature
    anchor: Path  # the directory it is reached from without following a link
    worktree: Path | None = None


@dataclass
class _Repo:
    root: str  # the main checkout, as a string prefix of the cwds under it
    common_dir: Path
    files: dict[Path, _Sealed] = field(default_factory=dict)
    worktrees: dict[str, list[_Sealed]] = field(default_factory=dict)  # path -> its files


_lock = threading.Lock()
_repos: dict[str, _Repo] = {}
_journal: deque[Restored] = deque(maxlen=_JOURNAL)


def seal_repository(root: Path, git_dir: Path, common_dir: Path) -> None:
    """Snapshot the shared setup of the repository checked out at ``root`` (blocking)."""
    key = os.path.normpath(root)
    shared = [common_dir / "config", git_dir / "config.worktree", common_dir / "info/attributes"]
    anchors = (common_dir, git_dir, common_dir)
    files = {path: _snapshot(path, anchor) for path, anchor in zip(shared, anchors, strict=True)}
    repo = _Repo(key, common_dir, files)
    with _lock:
        old = _repos.get(key)
        if old is not None:
            repo.worktrees = old.worktrees
        _repos[key] = repo


def unseal_repository(root: Path) -> None:
    with _lock:
        _repos.pop(os.path.normpath(root), None)


def expect_worktree(root: Path, worktree: Path) -> None:
    """Snapshot the pointers of ``worktree``, which the orchestrator just made (blocking)."""
    repo = _repos.get(os.path.normpath(root))
    if repo is None:
        return
    key = os.path.normpath(worktree)
    place = Path(key)
    files = [_snapshot(place / ".git", place, place)]
    admin = _admin_dir(files[0].data, place)
    if admin is not None and admin.is_relative_to(repo.common_dir):
        names = ("commondir", "gitdir", "config.worktree")
        files += [_snapshot(admin / name, repo.common_dir, place) for name in names]
    with _lock:
        repo.worktrees[key] = files


def forget_worktree(root: Path, worktree: Path) -> None:
    repo = _repos.get(os.path.normpath(root))
    if repo is not None:
        with _lock:
            repo.worktrees.pop(os.path.normpath(worktree), None)


def check(cwd: Path) -> list[Restored]:
    """Put back whatever of the sealed setup ``cwd``'s git would read that changed (blocking).

    Returns what was restored (also in the journal); nothing when ``cwd`` is in no sealed
    repository."""
    if not _repos:
        return []
    where = os.path.normpath(cwd)
    repo = _repo_of(where)
    if repo is None:
        return []
    sealed = list(repo.files.values())
    for path, files in repo.worktrees.items():
        if where == path or where.startswith(path + os.sep):
            sealed += files
            break
    restored = []
    for entry in sealed:
        if _signature(entry.path) == entry.signature:
            continue
        done = _put_back(repo, entry)
        if done is not None:
            restored.append(done)
    return restored


def refresh_after(cwd: Path, args: tuple[str, ...]) -> None:
    """Take the orchestrator's own change of git's setup (``args`` just ran) into the seal."""
    if not _repos or not _changes_setup(args):
        return
    repo = _repo_of(os.path.normpath(cwd))
    if repo is None:
        return
    # Only a file whose signature moved is read again: one that kept it holds what the seal
    # has (``check`` trusts the same signature), and a ``git worktree add`` or ``remove`` of
    # every task would otherwise read every sealed file of every worktree again. And only the
    # files this command could have changed: the repository's own, and those of the worktree
    # it ran in or names (``worktree remove <path>``). Another worktree's are not looked at:
    # a change of one of them now is not the orchestrator's, and taking it in here would
    # seal what a CLI wrote there (``check`` puts it back before git runs in that worktree).
    where = os.path.normpath(cwd)
    named = {os.path.normpath(os.path.join(where, arg)) for arg in args if arg[:1] != "-"}
    with _lock:
        for path, entry in list(repo.files.items()):
            repo.files[path] = _fresh(entry)
        for key, files in list(repo.worktrees.items()):
            if key in named or where == key or where.startswith(key + os.sep):
                repo.worktrees[key] = [_fresh(entry) for entry in files]


def admit(root: Path, path: Path) -> None:
    """Take the orchestrator's own change of one sealed ``path`` into the seal (blocking)."""
    repo = _repos.get(os.path.normpath(root))
    if repo is None:
        return
    with _lock:
        for files in (list(repo.files.values()), *repo.worktrees.values()):
            for entry in files:
                if entry.path == path:
                    fresh = _snapshot(path, entry.anchor, entry.worktree)
                    entry.data, entry.signature = fresh.data, fresh.signature


def covers(path: Path) -> bool:
    """Whether ``path`` is a file of some sealed repository's setup (put back by ``check``)."""
    with _lock:
        for repo in _repos.values():
            if path in repo.files:
                return True
            if any(entry.path == path for files in repo.worktrees.values() for entry in files):
                return True
    return False


def restored_since(when: float) -> list[Restored]:
    """What was put back at or after ``when`` (``time.monotonic``), oldest first."""
    with _lock:
        return [entry for entry in _journal if entry.when >= when]


# --- the pieces ----------------------------------------------------------------------------


def _repo_of(where: str) -> _Repo | None:
    for root, repo in _repos.items():
        if where == root or where.startswith(root + os.sep):
            return repo
        if where == str(repo.common_dir) or where.startswith(f"{repo.common_dir}{os.sep}"):
            return repo
    return None


def _changes_setup(args: tuple[str, ...]) -> bool:
    words = iter(args)
    for word in words:
        if word == "-c":
            next(words, None)
        elif not word.startswith("-"):
            return word in _SETUP_WORDS
    return False


def _signature(path: Path) -> Signature:
    try:
        info = os.lstat(path)
    except (FileNotFoundError, NotADirectoryError):
        return (0, 0, 0, 0)
    return (info.st_ino, info.st_size, info.st_mtime_ns, info.st_mode)


def _read(path: Path) -> bytes | None:
    """What ``path`` holds, as git would be shown it: a regular file's bytes (up to the cap), or
    a marker for anything else, never waiting and never following a link: a CLI can put a FIFO
    or a device in place of its worktree's ``.git``, and an open of one for reading would wait
    for a writer that never comes, with the seal's lock held; a link reads as its target's name,
    so a link moved elsewhere reads changed."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            try:
                return b"\0link " + os.fsencode(os.readlink(path))
            except OSError:
                return b"\0link"
        raise
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind == stat.S_IFDIR:
            return b"\0directory"
        if kind != stat.S_IFREG:
            return b"\0special %o" % kind
        with os.fdopen(fd, "rb", closefd=False) as handle:
            return handle.read(_CAP + 1)
    finally:
        os.close(fd)


def _snapshot(path: Path, anchor: Path, worktree: Path | None = None) -> _Sealed:
    signature = _signature(path)
    data = _read(path) if signature != (0, 0, 0, 0) else None
    return _Sealed(path, data, signature, anchor, worktree)


def _fresh(entry: _Sealed) -> _Sealed:
    """``entry`` as its file is now: itself when its signature did not move."""
    if _signature(entry.path) == entry.signature:
        return entry
    return _snapshot(entry.path, entry.anchor, entry.worktree)


def _admin_dir(gitfile: bytes | None, worktree: Path) -> Path | None:
    if gitfile is None or not gitfile.startswith(b"gitdir: "):
        return None
    target = os.fsdecode(gitfile.removeprefix(b"gitdir: ").strip())
    return Path(os.path.normpath(worktree / target))


def _put_back(repo: _Repo, entry: _Sealed) -> Restored | None:
    with _lock:
        now = _read(entry.path)
        nothing = {None, b""}  # an empty config and none at all tell git the same
        same = now == entry.data or (now in nothing and entry.data in nothing)
        if same or not os.path.isdir(entry.path.parent):
            # Touched, not changed (git rewrote it the same); or its whole directory is gone
            # (a worktree or its admin dir deleted: ``worktrees.stranded`` gives those back,
            # and a file put back alone would make a half admin dir git cannot use).
            entry.signature = _signature(entry.path)
            return None
        what = _restore(entry, now)
        entry.signature = _signature(entry.path)
        shown = _shown(repo, entry.path)
        said = f"{shown}: {_changed(entry, now)} ({what})"
        restored = Restored(time.monotonic(), entry.path, said, entry.worktree)
        _journal.append(restored)
        return restored


def _changed(entry: _Sealed, now: bytes | None) -> str:
    if entry.data is None:
        return "created"
    if now is None:
        return "deleted"
    if entry.path.name.startswith("config"):
        return describe_change(entry.data, now)
    return "changed"


def _restore(entry: _Sealed, now: bytes | None) -> str:
    path = entry.path
    stamp = time.strftime("%Y%m%dT%H%M%S", time.gmtime()) + "-" + secrets.token_hex(2)
    aside = path.with_name(f"{path.name}{ASIDE}{stamp}")
    # Every step from ``anchor`` (the git dir or the worktree) without following a link: a
    # CLI that put a link in place of a directory on the way must not redirect the restore.
    anchor = entry.anchor
    try:
        if now is None and not os.path.lexists(path):
            kept = "it had been deleted"
        else:
            safe_write.replace(anchor, path, aside)
            kept = f"the changed one kept as {aside.name}"
        if entry.data is None:
            return f"moved aside to {aside.name}"
        safe_write.write_atomic(anchor, path, entry.data)
    except (OSError, PathEscapeError) as exc:
        return f"could not be put back: {exc}"
    return f"restored; {kept}"


def _shown(repo: _Repo, path: Path) -> str:
    root = Path(repo.root)
    return str(path.relative_to(root)) if path.is_relative_to(root) else str(path)
