"""Git: every git command the orchestrator runs, started one way, that no CLI can steer.

Every git command goes through ``Git.run``: an argument list (never a shell), started in a
worker thread so the event loop never waits on git, with ``-C <dir>`` so a directory deleted
under us fails loudly instead of git silently running in our own cwd, and hardened against
whatever a CLI may have written into the repository:

- ``core.hooksPath`` points at an empty directory, so a hook a CLI planted never runs in the
  orchestrator's own commits and merges; ``core.fsmonitor`` is off, so no daemon is started;
  ``protocol.ext.allow=never``, so no remote URL turns into a command;
- the repository's setup (its config, ``info/attributes``, each worktree's ``.git`` file and
  admin pointers) is checked against the run's snapshot before the process starts, and put
  back if a CLI changed it (``orchestrator.git.seal``): a filter, textconv, merge driver, ssh
  command, credential helper or ``include`` a CLI added never runs here;
- the environment is exactly ``orchestrator.git.environment``'s: the user's git setup and
  transport, never the orchestrator's keys or tokens, never a ``GIT_*`` variable the
  orchestrator did not set; then no terminal prompts (``GIT_TERMINAL_PROMPT=0``), stdin is
  ``/dev/null``, ``LC_ALL=C`` so messages parse the same everywhere.

Git is started through ``orchestrator.process.command.run_captured``, not GitPython: GitPython's
command runner always starts git with a copy of this process's whole environment, which is
the leak the bullet above closes. Failures become ``GitError`` carrying the command and
git's stderr.
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

import anyio.to_thread

from orchestrator.errors import GitError
from orchestrator.git import ref_book, seal
from orchestrator.git.environment import git_environ
from orchestrator.process.command import Piped, run_captured, start_piped
from orchestrator.safety.crashpoints import crash_point

__all__ = ["ZERO_SHA", "Git", "GitBytes", "GitResult"]

ZERO_SHA = "0" * 40

_BASE_ENV = {
    "GIT_TERMINAL_PROMPT": "0",
    "GIT_ASKPASS": "",
    "SSH_ASKPASS": "",
    "GIT_EDITOR": ":",
    "GIT_PAGER": "cat",
    "LC_ALL": "C",
    "LANGUAGE": "C",
}


@dataclass(frozen=True)
class GitResult:
    argv: list[str]
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0

    @property
    def out(self) -> str:
        """stdout without its trailing newline."""
        return self.stdout.rstrip("\n")


@dataclass(frozen=True)
class GitBytes:
    """What ``Git.feed_sync`` returns: stdout as git wrote it."""

    argv: list[str]
    returncode: int
    stdout: bytes
    stderr: str


@dataclass(frozen=True)
class Git:
    """Runs git in ``cwd`` with the hardened settings above.

    ``hooks_dir`` is the empty directory ``core.hooksPath`` points at (created on first use);
    None points it at ``/dev/null``, which holds no hook either, for read-only questions about
    a repository in which nothing may be created yet (the checks before a run).
    ``env`` is added to every command (for example the orchestrator's commit identity).
    """

    cwd: Path
    hooks_dir: Path | None
    env: Mapping[str, str] = field(default_factory=dict)

    def at(self, cwd: Path) -> Git:
        """The same git, run in another directory (a worktree)."""
        return Git(cwd, self.hooks_dir, self.env)

    def argv(self, args: Sequence[str]) -> list[str]:
        return [
            "git",
            "-C",
            str(self.cwd),
            "-c",
            f"core.hooksPath={self.hooks_dir or os.devnull}",
            "-c",
            "core.fsmonitor=false",
            "-c",
            "protocol.ext.allow=never",
            *args,
        ]

    def run_sync(
        self,
        *args: str,
        check: bool = True,
        env: Mapping[str, str] | None = None,
        strip_stdout: bool = False,
    ) -> GitResult:
        """Run git now, in this thread (call it from a worker thread, never the event loop)."""
        argv, merged = self._prepared(args, env)
        try:
            status, stdout, stderr = run_captured(argv, merged)
        except OSError as exc:
            raise GitError(args, None, f"git could not be started: {exc}") from None
        seal.refresh_after(self.cwd, args)
        crash_point("git.ran", _step(args))
        result = GitResult(argv, status, _text(stdout, strip_stdout), _text(stderr, True))
        if check and not result.ok:
            raise GitError(args, result.returncode, result.stderr or result.stdout)
        return result

    def _prepared(
        self, args: Sequence[str], env: Mapping[str, str] | None = None
    ) -> tuple[list[str], dict[str, str]]:
        """The argv and the whole environment git runs with, its hooks folder made, and git's
        setup checked as the run sealed it (before git reads it)."""
        if self.hooks_dir is not None:
            self.hooks_dir.mkdir(parents=True, exist_ok=True)
        argv = self.argv(args)
        merged = {**git_environ(), **_BASE_ENV, **self.env, **(env or {})}
        seal.check(self.cwd)
        return argv, merged

    def feed_sync(self, *args: str, data: bytes = b"", check: bool = True) -> GitBytes:
        """``run_sync`` with ``data`` as git's stdin and its stdout as bytes: one process for
        a batch of objects (``cat-file --batch``) or an object's exact bytes
        (``hash-object -w --stdin``, ``mktree -z``). Blocking, like ``run_sync``."""
        argv, merged = self._prepared(args)
        try:
            status, out, stderr = run_captured(argv, merged, stdin=data)
        except OSError as exc:
            raise GitError(args, None, f"git could not be started: {exc}") from None
        crash_point("git.ran", _step(args))
        result = GitBytes(argv, status, out, _text(stderr, True))
        if check and result.returncode != 0:
            raise GitError(args, result.returncode, result.stderr)
        return result

    def piped_sync(self, *args: str, stderr: int | IO[bytes]) -> Piped:
        """git started as ``run_sync`` starts it, with its stdin and stdout as pipes: for a
        stream too large to hold at once (``cat-file --batch`` of everything a landing brings,
        read as it comes). The caller writes, reads, waits for it and kills it."""
        argv, merged = self._prepared(args)
        try:
            return start_piped(argv, merged, stderr)
        except OSError as exc:
            raise GitError(args, None, f"git could not be started: {exc}") from None

    async def run(
        self,
        *args: str,
        check: bool = True,
        env: Mapping[str, str] | None = None,
    ) -> GitResult:
        """Run git in a worker thread."""
        return await anyio.to_thread.run_sync(lambda: self.run_sync(*args, check=check, env=env))

    async def rev_parse(self, ref: str) -> str | None:
        """The commit ``ref`` names, or None when it names nothing."""
        result = await self.run(
            "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}", check=False
        )
        return result.out if result.ok else None

    async def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """True when ``descendant`` contains ``ancestor`` (every commit is its own ancestor)."""
        result = await self.run("merge-base", "--is-ancestor", ancestor, descendant, check=False)
        if result.returncode not in (0, 1):
            raise GitError(
                ["merge-base", "--is-ancestor", ancestor, descendant],
                result.returncode,
                result.stderr,
            )
        return result.returncode == 0

    async def update_ref(self, ref: str, new: str, expected_old: str | None, reason: str) -> bool:
        """Compare-and-swap ``ref`` to ``new``; False when ``ref`` no longer was ``expected_old``.

        ``expected_old=None`` means the ref must not exist yet.
        """
        old = expected_old or ZERO_SHA

        def write() -> GitResult:
            # Noted with the write, for the tamper check (``orchestrator.git.ref_book``).
            with ref_book.writing():
                result = self.run_sync("update-ref", "-m", reason, ref, new, old, check=False)
                if result.ok:
                    ref_book.note(ref, expected_old, new)
            return result

        result = await anyio.to_thread.run_sync(write)
        if result.ok:
            return True
        current = await self.rev_parse(ref)
        if current != (expected_old or None):
            return False  # somebody moved it: the caller re-reads and retries
        raise GitError(["update-ref", ref, new, old], result.returncode, result.stderr)


def _step(args: Sequence[str]) -> str:
    """The kind of git step ``args`` is, for the crash trace: ``worktree add``, ``commit``."""
    words: list[str] = []
    rest = iter(args)
    for arg in rest:
        if arg == "-c":
            next(rest, None)  # its value
        elif not arg.startswith("-"):
            words.append(arg)
            if len(words) == 2:
                break
    if words[:1] and words[0] in {"worktree", "stash", "config", "notes"}:
        return " ".join(words)
    return words[0] if words else ""


def _text(value: bytes, strip: bool = False) -> str:
    text = value.decode("utf-8", "replace")
    return text[:-1] if strip and text.endswith("\n") else text
