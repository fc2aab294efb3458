"""Where things live in a user's repository, and the one lock around git's worktree metadata.

Layout: everything is under ``<repo>/.council/``: ``worktrees/<session>`` (live sessions),
``pool/<key>-<token>`` (clean worktrees kept for reuse), ``command-homes/<session>`` (the
private HOME of a session's setup and verify commands), ``locks/``, ``logs/`` and an empty
``git-hooks/`` that every git command uses as its hooks directory. ``.council/`` is listed
once in the repository's ``info/exclude`` (of the common git dir, so it also holds when the
repository is itself a linked worktree or a submodule with a ``.git`` file), with the caches
a CLI writes at a worktree's root that no option moves (aider's ``.aider.tags.cache.v4/``),
so they are never committed as work.

Names of branches and refs, and the ids they are built from: ``names``.

The metadata lock: git 2.39 races when worktrees are added, moved, locked or removed
concurrently (about 2% of concurrent adds failed reading another worktree's ``commondir``,
and a failed ``branch -D`` broke the next branch of that name). ``MetaLock`` serializes those
metadata steps, within a process (anyio lock) and across processes (a file lock); checkouts
run outside it, so the cost measured was 1.09x for zero failures.
"""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar, cast

import anyio
import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.repo import Git, GitResult
from orchestrator.ids import check_id
from orchestrator.safety.safe_write import make_dirs, open_append
from orchestrator.worktrees.names import (
    check_inside,
)

__all__ = [
    "COUNCIL_DIR",
    "IDENTITY",
    "MetaLock",
    "RepoLayout",
]

COUNCIL_DIR = ".council"
IDENTITY = {
    "GIT_AUTHOR_NAME": "CLI Council",
    "GIT_AUTHOR_EMAIL": "council@localhost",
    "GIT_COMMITTER_NAME": "CLI Council",
    "GIT_COMMITTER_EMAIL": "council@localhost",
}
_EXCLUDE_LINE = f"/{COUNCIL_DIR}/"
_EXCLUDE_FORMS = {COUNCIL_DIR, f"{COUNCIL_DIR}/", f"/{COUNCIL_DIR}", _EXCLUDE_LINE}
# What a CLI leaves at a worktree's root that is its own state, never work, and that no option
# of the CLI moves: aider's repo-map cache (an sqlite database, rewritten on every run).
_CLI_STATE_LINES = ("/.aider.tags.cache.v*/",)


@dataclass(frozen=True)
class RepoLayout:
    """The resolved places of one repository checkout."""

    root: Path
    git_dir: Path
    common_dir: Path
    exclude_file: Path

    @property
    def council(self) -> Path:
        return self.root / COUNCIL_DIR

    @property
    def worktrees_dir(self) -> Path:
        return self.council / "worktrees"

    @property
    def pool_dir(self) -> Path:
        return self.council / "pool"

    @property
    def logs_dir(self) -> Path:
        return self.council / "logs"

    @property
    def hooks_dir(self) -> Path:
        return self.council / "git-hooks"

    @property
    def meta_lock_path(self) -> Path:
        return self.council / "locks" / "worktree-meta.lock"

    def session_path(self, session_id: str) -> Path:
        return check_inside(self.worktrees_dir, Path(check_id(session_id, "session id")))

    def command_home(self, session_id: str) -> Path:
        """The private HOME of the commands run on a session's work (``sandbox.commands``)."""
        top = self.council / "command-homes"
        return check_inside(top, Path(check_id(session_id, "session id")))

    def setup_log(self, session_id: str) -> Path:
        return check_inside(self.logs_dir, Path(f"setup-{check_id(session_id, 'session id')}.log"))

    @classmethod
    async def discover(cls, repo_path: Path) -> RepoLayout:
        """Find the checkout's git dirs; ``repo_path`` must be the top level of a checkout."""

        def find() -> tuple[Path, GitResult]:  # the root, then git asked: one worker-thread call
            root = _checkout_root(repo_path)
            git = Git(root, root / COUNCIL_DIR / "git-hooks")
            try:
                asked = git.run_sync(
                    "rev-parse", "--git-dir", "--git-common-dir", "--git-path", "info/exclude"
                )
            except GitError as exc:
                detail = exc.stderr.strip()
                raise WorkspaceError(f"{root} is not a usable git checkout: {detail}") from None
            return root, asked

        root, found = await anyio.to_thread.run_sync(find)
        lines = found.out.splitlines()
        if len(lines) != 3:
            raise WorkspaceError(f"{root}: unexpected answer from git rev-parse: {found.out!r}")
        git_dir, common_dir, exclude = (_normal(root / line) for line in lines)
        return cls(root, git_dir, common_dir, exclude)

    async def prepare(self, meta_timeout: float, *, then: Callable[[], None] | None = None) -> None:
        """Create ``.council``'s directories and exclude ``.council/`` from git, once; with
        ``then`` (blocking work that needs them), that after, in the same worker-thread call."""

        def run() -> None:
            for directory in (self.worktrees_dir, self.pool_dir, self.logs_dir, self.hooks_dir):
                make_dirs(self.root, directory)  # a link CLI Council did not make is refused
            # Two orchestrators starting together must not both append the line.
            with filelock.acquire_blocking(
                self.meta_lock_path, timeout=meta_timeout, root=self.root
            ):
                _ensure_excluded(self.exclude_file)
            if then is not None:
                then()

        await anyio.to_thread.run_sync(run)


def _normal(path: Path) -> Path:
    return Path(os.path.normpath(path))


def _checkout_root(repo_path: Path) -> Path:
    root = repo_path.resolve()
    if not (root / ".git").exists():
        raise WorkspaceError(
            f"{repo_path} is not the top level of a git checkout (it has no .git); "
            "pass the repository's root directory"
        )
    return root


def _ensure_excluded(exclude_file: Path) -> None:
    try:
        text = exclude_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        text = ""
    present = {line.strip() for line in text.splitlines()}
    added = ""
    if not present & _EXCLUDE_FORMS:
        added += f"# CLI Council's worktrees, state and logs\n{_EXCLUDE_LINE}\n"
    missing = [line for line in _CLI_STATE_LINES if line not in present]
    if missing:
        added += "# caches the CLIs write in a worktree (never work)\n" + "".join(
            f"{line}\n" for line in missing
        )
    if not added:
        return
    prefix = "" if not text or text.endswith("\n") else "\n"
    # A CLI can write in the git directory: a link at info/exclude must not be followed.
    git_dir = exclude_file.parent.parent
    fd = open_append(git_dir, exclude_file)
    with os.fdopen(fd, "a", encoding="utf-8") as handle:
        handle.write(prefix + added)


T = TypeVar("T")


class MetaLock:
    """The repository's lock around git worktree metadata steps (never around checkouts)."""

    def __init__(self, path: Path, timeout: float, root: Path) -> None:
        self.path = path
        self.timeout = timeout
        self.root = root  # the lock file is reached from here without following a link
        self._local = anyio.Lock()

    @asynccontextmanager
    async def hold(self) -> AsyncIterator[None]:
        async with self._local:
            held = await filelock.acquire(self.path, timeout=self.timeout, root=self.root)
            try:
                yield
            finally:
                held.release()

    @asynccontextmanager
    async def turn(self) -> AsyncIterator[None]:
        """This process's turn at the lock, in line with its other holders (``hold``, ``run``),
        without the lock itself: for a caller that tries it (``try_run``) in a worker-thread
        call of its own meanwhile. Not reentrant: no ``run`` or ``hold`` inside it."""
        async with self._local:
            yield

    def try_run(self, steps: Callable[[], T]) -> tuple[bool, T | None]:
        """``steps`` under the lock if nobody holds it now (blocking, never waiting): whether
        they ran, and their answer. For a caller's worker-thread call with other work in it
        (a session's worktree checked out in its record's call); one that finds the lock busy
        goes through ``run``. The lock is flock-style, so a holder in this process counts."""
        held = filelock.try_acquire(self.path, root=self.root)
        if held is None:
            return False, None
        try:
            return True, steps()
        finally:
            held.release()

    async def run(
        self,
        steps: Callable[[], T],
        carry: Callable[[Callable[[], tuple[bool, T | None]]], Awaitable[tuple[bool, T | None]]]
        | None = None,
    ) -> T:
        """``steps`` under the lock, in line with this process's other holders (``hold``).
        When no other process holds the lock (the usual case) its try and the steps are one
        worker-thread call, the lock let go before it returns; else the lock is waited for
        as ``hold`` waits and the steps run in a worker thread under it. ``carry``: what runs
        that first try (blocking: whether the lock was taken, and the steps' answer) in a
        worker-thread call of its own making, with more blocking work after it (a store call
        that deletes the record of what the steps removed, ``SessionBook.retire``)."""

        def first() -> tuple[bool, T | None]:
            return self.try_run(steps)

        async with self._local:
            if carry is None:
                took, done = await anyio.to_thread.run_sync(first)
            else:
                took, done = await carry(first)
            if took:
                return cast("T", done)
            held = await filelock.acquire(self.path, timeout=self.timeout, root=self.root)
            try:
                return await anyio.to_thread.run_sync(steps)
            finally:
                held.release()
