"""Git's shared setup around a CLI session: which files are watched, what changed, put back.

``TamperGuard`` reads these files byte for byte at every watch and compares them at the
session's check (blocking: call it in a worker thread). They are the common ``config``, the
main checkout's and the session's own ``config.worktree``, every file in the common
``hooks/`` (but ``*.sample``, which git never runs, and what a restore keeps aside) and in
``info/`` (``attributes``, ``exclude``, ``sparse-checkout``, ``grafts``). These decide what
*every* later git command runs: a hook, ``core.hooksPath``, a filter or diff driver fed by
``info/attributes``. Of ``info/`` only the files git reads to decide what it does;
``info/refs``, which ``git gc`` rewrites, is bookkeeping, like packs, ``packed-refs``,
reflogs, ``FETCH_HEAD`` and ``gc.pid``, none of which is watched.

``undo_setup`` puts each changed file back as the session's watch saw it (``files.restore``:
the CLI's version is kept beside it, nothing is deleted), but for the files the run's seal
puts back itself (``orchestrator.git.seal``). A session's own ``config.worktree`` is traced
to it; the rest is everyone's (``blame``).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

from orchestrator.errors import PathEscapeError
from orchestrator.git import seal
from orchestrator.git.gitfile import read_gitfile
from orchestrator.worktrees.tamper.blame import Finding
from orchestrator.worktrees.tamper.files import ASIDE, FileState, describe_config, restore

__all__ = ["setup_files", "undo_setup"]

_INFO = ("attributes", "exclude", "sparse-checkout", "grafts")


def setup_files(common_dir: Path, git_dir: Path, worktree: Path) -> set[Path]:
    """The setup files watched around a session in ``worktree`` (blocking)."""
    admin = read_gitfile(worktree)
    found = {common_dir / "config", git_dir / "config.worktree"}
    if admin is not None:
        found.add(admin / "config.worktree")
    # info/: only what git reads to decide what it does; ``info/refs`` (which ``git gc``
    # and ``update-server-info`` rewrite for dumb transports) is git's own bookkeeping.
    found.update(common_dir / "info" / name for name in _INFO)
    hooks = common_dir / "hooks"
    try:
        names = os.listdir(hooks)
    except OSError:
        names = []
    found.update(
        hooks / name
        for name in names
        if not name.endswith((".sample", ".lock")) and ASIDE not in name
    )
    return found


def undo_setup(
    common_dir: Path,
    paths: set[Path],
    seen: dict[Path, FileState],
    own: Path | None,
    serial: int,
    others: dict[int, dict[Path, FileState]],
    stamp: str,
    show: Callable[[Path], str],
) -> list[Finding]:
    """Git's setup put back as a session's watch saw it (``seen``; ``paths`` the files watched
    now), but for the files the run's seal puts back itself (``orchestrator.git.seal``: to the
    run's version, never to a version a CLI had changed before this session's watch; the
    guard's ``_sealed`` judges those). ``own``: the session's own ``config.worktree``, traced
    to it (``serial``). A session running beside it (``others``: each one's watched files, by
    serial) whose own watch saw the changed version already started after the change
    (``cleared``); its snapshot is set to the version put back, so its check does not plant
    the change again."""
    changes = []
    for path in sorted(paths | seen.keys()):
        before = seen.get(path, FileState())
        now = FileState.read(path)
        if before.same(now) or _nothing_either_way(path, before, now):
            continue
        if seal.covers(path):
            continue  # the run's seal puts it back, before the next git command (_sealed)
        if now.kind == "absent" and not os.path.isdir(path.parent):
            continue  # a worktree's whole admin dir went: the stranded repair's to give back
        what = f"{show(path)}: {_what_changed(path, before, now)}"
        try:
            done = restore(common_dir, path, before, now, stamp)
        except (OSError, PathEscapeError) as exc:
            done = f"could not be undone: {exc}"
        # The session's own config.worktree is its worktree's; the rest is everyone's.
        traced = serial if path == own else None
        cleared = set()
        for other, files in others.items():
            other_seen = files.get(path)
            if other_seen is not None and other_seen.same(now):
                files[path] = before
                cleared.add(other)
        changes.append(Finding(f"{what} ({done})", traced, cleared=frozenset(cleared)))
    return changes


def _nothing_either_way(path: Path, before: FileState, now: FileState) -> bool:
    """An empty git config file and none at all tell git the same: nothing (the stranded
    repair and the sandbox's reach make an empty ``config.worktree`` where git had none)."""
    if not path.name.startswith("config"):
        return False
    empty = {("absent", None), ("file", b"")}
    return (before.kind, before.data) in empty and (now.kind, now.data) in empty


def _what_changed(path: Path, before: FileState, now: FileState) -> str:
    if before.kind == "absent":
        return "created"
    if now.kind == "absent":
        return "deleted"
    if path.name in ("config", "config.worktree") and before.kind == now.kind == "file":
        return describe_config(before, now)
    return "changed"
