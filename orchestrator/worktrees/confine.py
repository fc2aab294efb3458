"""What of the repository a session's CLI needs to commit on its own branch, for the sandbox.

``git_reach(layout, worktree, branch)`` (blocking) answers ``orchestrator.sandbox``'s
``GitReach``: writable, the worktree's own admin dir under ``<common>/worktrees/`` and the
directories of its own branch's ref and reflog (made if missing: a bind needs them to exist),
and an object store of its own, ``.council/objects/<worktree>`` (``orchestrator.git.objects``:
the repository's store stays read-only to the CLI); sealed, the worktree's ``.git`` file and
the admin dir's ``commondir``, ``gitdir`` and ``config.worktree`` (an empty one is made where
git has none, so there is a file to hold read-only, and the run's seal is told it is the
orchestrator's). An admin dir the ``.git`` file does not place under the common dir's
``worktrees/`` is not made writable: the CLI then commits nothing, and nothing of it is
trusted. ``remotes``: the repository's remotes that are paths on this machine (a bare
repository on disk, ``file://``), which the sandbox keeps read-only wherever they are (a
``write:`` path above one included), so a CLI cannot push onto a team's base; a remote reached
through a URL needs credentials, which a CLI does not have (its HOME is private, the user's
agents' sockets are hidden: ``orchestrator.sandbox.plan``).

``adopt_left_objects`` takes in what CLIs of a run that died wrote to their own stores (the
runner takes them in as each CLI exits), before anything else reads them.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

import anyio.to_thread

from orchestrator.git import seal
from orchestrator.git.gitfile import read_gitfile
from orchestrator.git.objects import adopt_objects, private_store
from orchestrator.git.repo import Git
from orchestrator.safety import safe_write
from orchestrator.sandbox.plan import GitReach
from orchestrator.worktrees.layout import COUNCIL_DIR, RepoLayout

__all__ = [
    "adopt_left_objects",
    "git_reach",
    "outside_look",
    "outside_reach",
    "outside_reach_now",
]


async def outside_reach(repo: Path) -> GitReach:
    """What a CLI that works outside every worktree may reach of the repository (the goal
    planner, in a copy of the base branch; council mode's judge): all of it read-only,
    nothing of git writable, and ``.council/`` hidden as from any CLI. Found without git,
    which would make ``.council/`` (its hooks directory) in a repository no run has used."""
    return await anyio.to_thread.run_sync(outside_reach_now, repo)


async def outside_look(repo: Path) -> Callable[[], GitReach]:
    """``outside_reach`` as a blocking look, for a ``PhaseCall.reach``: the runner makes it in
    the worker-thread call that builds the CLI's command."""
    return partial(outside_reach_now, repo)


def outside_reach_now(repo: Path) -> GitReach:
    """``outside_reach``, blocking."""
    root = Path(os.path.realpath(repo))
    return GitReach(root, root / COUNCIL_DIR, writable=(), sealed=())


def git_reach(layout: RepoLayout, worktree: Path, branch: str | None) -> GitReach:
    common = layout.common_dir
    writable: list[Path] = []
    sealed = [worktree / ".git"]
    admin = read_gitfile(worktree)
    if admin is not None and admin.parent == common / "worktrees" and admin.is_dir():
        writable.append(admin)
        own_config = admin / "config.worktree"
        if not os.path.lexists(own_config):
            safe_write.write_atomic(common, own_config, b"")
            seal.admit(layout.root, own_config)
        sealed += [admin / "commondir", admin / "gitdir", own_config]
    if branch:
        for top in (common / "refs" / "heads", common / "logs" / "refs" / "heads"):
            directory = (top / branch).parent
            safe_write.make_dirs(common, directory)
            writable.append(directory)
    objects = layout.council / "objects" / worktree.name
    private_store(objects, common / "objects")
    return GitReach(
        layout.root,
        layout.council,
        tuple(writable),
        tuple(sealed),
        objects=objects,
        shared_objects=common / "objects",
        remotes=local_remotes(common / "config", layout.root),
    )


def local_remotes(config: Path, root: Path) -> tuple[Path, ...]:
    """The paths on this machine the remotes in git config ``config`` push to or fetch from
    (``remote.<name>.url`` and ``pushurl``: a path, absolute or relative to ``root``, or a
    ``file://`` URL), that exist (blocking). Read with a reader for these two keys, not git's
    full grammar: a remote named only through ``include`` or ``insteadOf`` is not found (the
    sandbox still shows it read-only unless a ``write:`` path holds it)."""
    try:
        text = config.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return ()
    found: list[Path] = []
    in_remote = False
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("["):
            in_remote = line[1:].lstrip().lower().startswith("remote")
            continue
        if not in_remote or "=" not in line:
            continue
        key, _, value = line.partition("=")
        if key.strip().lower() not in ("url", "pushurl"):
            continue
        path = _local_path(value.strip().strip('"'), root)
        if path is not None and path not in found and os.path.exists(path):
            found.append(path)
    return tuple(found)


def _local_path(url: str, root: Path) -> Path | None:
    """The path ``url`` names on this machine, or None (a URL of another transport, or
    scp-like ``host:path``)."""
    if url.startswith("file://"):
        return Path(os.path.normpath(url.removeprefix("file://")))
    if "://" in url or not url:
        return None
    if ":" in url.split("/", 1)[0]:  # host:path (ssh), as git reads it
        return None
    return Path(os.path.normpath(root / url))


def adopt_left_objects(layout: RepoLayout, git: Git) -> None:
    """Take in the objects left in every CLI's own store (blocking)."""
    stores = layout.council / "objects"
    try:
        names = os.listdir(stores)
    except FileNotFoundError:
        return
    for name in names:
        adopt_objects(stores / name, layout.common_dir / "objects", git)
