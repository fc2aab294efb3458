"""Preparing a new worktree: files copied in from the main checkout, then setup commands.

Copies (``copy_files``: ``.env``, local config) come from the user's checkout, which is only
read. Each is a repository-relative path; the source is resolved, symlinks included, and must
stay inside the main checkout, and the copy is written into the worktree without following a
link on the way or at the file (``safe_write``: a tracked or planted link in the worktree
could point the copy anywhere), else ``PathEscapeError``. A missing source is skipped and
noted in the log (an optional ``.env`` is common). Copying runs in a worker thread.

Setup commands are argument lists run in the worktree through ``sandbox.commands`` (no
shell, own process group, killed with their children on timeout): the package scripts they run
come from landed work, which CLIs wrote, so they run confined as a CLI is: inside the sandbox
of the session's CLI where it has one (``WorktreeSettings.sandbox_for``), with the session's
private HOME for commands (never the user's), the allow-listed environment of every non-CLI
child, the ``passthrough`` names, and ``COUNCIL_SESSION_ID``, ``COUNCIL_TASK_ID``,
``COUNCIL_WORKTREE`` and ``COUNCIL_REPO``; their output comes back masked (known secrets and
credential shapes). Everything is logged, masked, to ``.council/logs/setup-<session>.log``; the
first failing command raises ``WorkspaceError`` with the command, its exit code and the log
path (the caller then removes the worktree under the usual safety rules).
"""

from __future__ import annotations

import os
import shlex
import stat
import time
from collections.abc import Sequence
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import RunError, WorkspaceError
from orchestrator.safety import safe_write
from orchestrator.safety.paths import ensure_under
from orchestrator.safety.secret_mask import hidden
from orchestrator.sandbox.commands import CommandPlace, run_confined

__all__ = ["copy_in", "prepare_worktree"]


def copy_in(repo_root: Path, worktree: Path, paths: Sequence[str]) -> list[str]:
    """Copy ``paths`` from the main checkout into ``worktree`` (blocking); return log lines."""
    lines = []
    for relative in paths:
        source = ensure_under(repo_root, relative)
        if not source.exists():
            lines.append(f"copy {relative}: not in the main checkout, skipped")
            continue
        target = worktree / relative
        if source.is_dir():
            _copy_tree(worktree, source, target)
        else:
            _copy_file(worktree, source, target)
        lines.append(f"copy {relative}: done")
    return lines


def _copy_tree(worktree: Path, source: Path, target: Path) -> None:
    """``source``'s files and links (as links) into ``target``, over what is there."""
    for top, directories, files in os.walk(source):
        here = Path(top)
        into = target / here.relative_to(source)
        safe_write.make_dirs(worktree, into)
        for name in [*files, *(d for d in directories if (here / d).is_symlink())]:
            if (here / name).is_symlink():
                safe_write.symlink(worktree, into / name, os.readlink(here / name))
            else:
                _copy_file(worktree, here / name, into / name)


def _copy_file(worktree: Path, source: Path, target: Path) -> None:
    mode = stat.S_IMODE(source.stat().st_mode)
    safe_write.write_atomic(worktree, target, source.read_bytes(), mode)


async def prepare_worktree(
    *,
    repo_root: Path,
    place: CommandPlace,
    session_id: str,
    task_id: str,
    copy_files: Sequence[str],
    setup: Sequence[Sequence[str]],
    timeout: float,
    log_path: Path,
    passthrough: Sequence[str] = (),
) -> None:
    """Copy files into ``place``'s worktree and run the setup commands there, confined
    (``sandbox.commands``); raise ``WorkspaceError`` on the first failure."""
    if not copy_files and not setup:
        return
    worktree = place.workdir
    log = _Log(log_path, repo_root)
    await log.write(f"# setup of session {session_id} in {worktree}, {_now()}\n")
    if copy_files:
        lines = await anyio.to_thread.run_sync(copy_in, repo_root, worktree, list(copy_files))
        await log.write("".join(line + "\n" for line in lines))
    ours = {
        "COUNCIL_SESSION_ID": session_id,
        "COUNCIL_TASK_ID": task_id,
        "COUNCIL_WORKTREE": str(worktree),
        "COUNCIL_REPO": str(repo_root),
    }
    for argv in setup:
        shown = shlex.join(argv)
        await log.write(f"$ {shown}\n")
        try:
            result = await run_confined(
                place, argv, timeout=timeout, passthrough=passthrough, extra=ours
            )
        except RunError as exc:
            await log.write(f"{exc}\n")
            raise WorkspaceError(
                f"setup command {shown!r} could not start: {exc} (log: {log_path})"
            ) from None
        output = (
            result.output
            if not result.output or result.output.endswith("\n")
            else (result.output + "\n")
        )
        if result.timed_out:
            await log.write(f"{output}# timed out after {timeout:g}s\n")
            raise WorkspaceError(
                f"setup command {shown!r} timed out after {timeout:g}s (log: {log_path})"
            )
        await log.write(f"{output}# exit code {result.returncode} in {result.seconds:.2f}s\n")
        if not result.ok:
            raise WorkspaceError(
                f"setup command {shown!r} failed with exit code {result.returncode} "
                f"(log: {log_path})"
            )


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


class _Log:
    def __init__(self, path: Path, root: Path) -> None:
        self.path = path
        self.root = root  # the log is reached from here without following a link
        self._started = False

    async def write(self, text: str) -> None:
        # Each setup starts a fresh log; a recreated or retried session overwrites the old one.
        mode = "a" if self._started else "w"
        self._started = True
        await anyio.to_thread.run_sync(self._append, hidden(text), mode)

    def _append(self, text: str, mode: str) -> None:
        fd = safe_write.open_append(self.root, self.path, truncate=mode == "w")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            handle.write(text)
