"""Where things live in a user's repository, what the orchestrator's refs are called, and the
one lock around git's worktree metadata.

Layout: everything is under ``<repo>/.council/``: ``worktrees/<session>`` (live sessions),
``pool/<key>-<token>`` (clean worktrees kept for reuse), ``locks/``, ``logs/`` and an empty
``git-hooks/`` that every git command uses as its hooks directory. ``.council/`` is listed
once in the repository's ``info/exclude`` (of the common git dir, so it also holds when the
repository is itself a linked worktree or a submodule with a ``.git`` file), with the caches
a CLI writes at a worktree's root that no option moves (aider's ``.aider.tags.cache.v4/``),
so they are never committed as work.

Names: session branches are ``council/<task>/<n>``; a session's saved tip is
``refs/council/rescue/<session>``. Ids are safe ids that also may not end in ``.lock`` (git
refuses such ref names), and every path built from one is checked to stay under its root.

The metadata lock: git 2.39 races when worktrees are added, moved, locked or removed
concurrently (about 2% of concurrent adds failed reading another worktree's ``commondir``,
and a failed ``branch -D`` broke the next branch of that name). ``MetaLock`` serializes those
metadata steps, within a process (anyio lock) and across processes (a file lock); checkouts
run outside it, so the cost measured was 1.09x for zero failures.
"""

from __future__ import annotations

import os
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator import filelock
from orchestrator.errors import GitError, InvalidIdError, PathEscapeError, WorkspaceError
from orchestrator.git.repo import Git
from orchestrator.ids import check_id, is_safe_id
from orchestrator.safety.safe_write import make_dirs, open_append

__all__ = [
    "COUNCIL_DIR",
    "IDENTITY",
    "RESCUE_PREFIX",
    "MetaLock",
    "RepoLayout",
    "branch_name",
    "check_inside",
    "check_ref_id",
    "lock_reason",
    "parse_lock_reason",
    "rescue_ref",
]

COUNCIL_DIR = ".council"
RESCUE_PREFIX = "refs/council/rescue/"
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
_REASON = re.compile(r"^council session=(?P<session>\S+) cli=(?P<cli>\S+) task=(?P<task>\S+)$")


def check_ref_id(value: str, kind: str) -> str:
    """A safe id that can also be a ref component (git refuses components ending in .lock)."""
    check_id(value, kind)
    if value.endswith(".lock"):
        raise InvalidIdError(f"{kind} {value!r} ends in '.lock', which git refuses in ref names")
    return value


def branch_name(task_id: str, attempt: int) -> str:
    return f"council/{task_id}/{attempt}"


def rescue_ref(session_id: str) -> str:
    return f"{RESCUE_PREFIX}{session_id}"


def lock_reason(session_id: str, cli: str, task_id: str) -> str:
    """The reason ``git worktree lock`` records; it names the owner even without a store."""
    return f"council session={session_id} cli={cli} task={task_id}"


def parse_lock_reason(reason: str | None) -> tuple[str, str, str] | None:
    """(session, cli, task) from a reason ``lock_reason`` wrote, else None (also when a
    hand-written reason holds anything but safe ids)."""
    match = _REASON.match(reason or "")
    if match is None:
        return None
    found = (match["session"], match["cli"], match["task"])
    return found if all(is_safe_id(value) for value in found) else None


def check_inside(root: Path, path: Path) -> Path:
    """``path`` made absolute and normalized, or ``PathEscapeError`` if it leaves ``root``.

    Lexical only: callers pass roots that are already resolved and components that are safe
    ids; ``paths.ensure_under`` is the check that also follows symlinks.
    """
    absolute = _normal(root / path)
    if absolute != root and root not in absolute.parents:
        raise PathEscapeError(f"{path} resolves outside {root}")
    return absolute


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

    def setup_log(self, session_id: str) -> Path:
        return check_inside(self.logs_dir, Path(f"setup-{check_id(session_id, 'session id')}.log"))

    @classmethod
    async def discover(cls, repo_path: Path) -> RepoLayout:
        """Find the checkout's git dirs; ``repo_path`` must be the top level of a checkout."""
        root = await anyio.to_thread.run_sync(_checkout_root, repo_path)
        git = Git(root, root / COUNCIL_DIR / "git-hooks")
        try:
            found = await git.run(
                "rev-parse", "--git-dir", "--git-common-dir", "--git-path", "info/exclude"
            )
        except GitError as exc:
            detail = exc.stderr.strip()
            raise WorkspaceError(f"{root} is not a usable git checkout: {detail}") from None
        lines = found.out.splitlines()
        if len(lines) != 3:
            raise WorkspaceError(f"{root}: unexpected answer from git rev-parse: {found.out!r}")
        git_dir, common_dir, exclude = (_normal(root / line) for line in lines)
        return cls(root, git_dir, common_dir, exclude)

    async def prepare(self, meta_timeout: float) -> None:
        """Create ``.council``'s directories and exclude ``.council/`` from git, once."""

        def run() -> None:
            for directory in (self.worktrees_dir, self.pool_dir, self.logs_dir, self.hooks_dir):
                make_dirs(self.root, directory)  # a link CLI Council did not make is refused
            # Two orchestrators starting together must not both append the line.
            with filelock.acquire_blocking(
                self.meta_lock_path, timeout=meta_timeout, root=self.root
            ):
                _ensure_excluded(self.exclude_file)

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
