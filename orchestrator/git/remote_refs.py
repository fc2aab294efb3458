"""Fetching one ref from a remote, and pushing one ref to it guarded by a lease.

Both are synchronous (run them in a worker thread) and go through ``GitCalls``.

The push is the remote's compare-and-swap: ``--force-with-lease=<dst>:<expected>`` makes
the server side update ``dst`` only if it still holds ``expected`` (the empty string: only if
it does not exist). The refspec **never** carries a ``+`` and ``--force`` is never given:
with ``+`` git forces the update whatever the lease says, which silently overwrites a
concurrent writer's commit. ``--porcelain`` gives one machine-readable line per ref on
stdout; the server's own words (a hook's message) arrive on stderr as ``remote:`` lines.

A refusal is one of two kinds:

- **moved**: the ref no longer holds ``expected`` (``stale info``; ``fetch first`` and
  ``non-fast-forward`` when no lease applied; a server-side ``cannot lock ref`` when another
  push won the race inside the server). The caller re-reads and tries again.
- **refused**: anything else (a hook declined, a protected branch, no permission, the remote
  unreachable). ``RemotePushRefused`` carries the server's message; never retried as forced.

Local hooks never run: ``core.hooksPath`` is an empty directory (``Git``), and
``--no-verify`` says so once more for ``pre-push``.
"""

from __future__ import annotations

import re
import time
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import GitError, RemotePushRefused, WorkspaceError
from orchestrator.git.merge_tree import GitCalls

__all__ = [
    "PushLine",
    "check_remote_name",
    "fetch_ref",
    "fetch_refs",
    "parse_porcelain",
    "push_ref",
]

# Git's "the remote does not have this ref" (the wording of git 2.30 to 2.45).
_NO_REMOTE_REF = "couldn't find remote ref"
# Rejections that mean "the ref moved under us": the reason git prints in parentheses, and
# what the server says when two pushes raced past the client's lease check together.
_MOVED = ("stale info", "fetch first", "non-fast-forward")
_MOVED_SERVER = ("cannot lock ref", "failed to lock", "incorrect old value")
# Only a configured remote's name: a URL or path would make "the tracking ref" meaningless,
# and a leading "-" would be read as an option.
_REMOTE_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9._/-]*")
# No gc or maintenance started in the user's repository by our fetch; no submodule recursion.
_QUIET = ("-c", "gc.auto=0", "-c", "maintenance.auto=false")


@dataclass(frozen=True)
class PushLine:
    """One ``git push --porcelain`` ref line: ``<flag>\\t<from>:<to>\\t<summary>``."""

    flag: str
    source: str
    target: str
    summary: str

    @property
    def ok(self) -> bool:
        # " " fast-forward, "+" forced (only ever under a lease here), "*" new, "=" up to date
        return self.flag in {" ", "+", "*", "="}

    @property
    def reason(self) -> str:
        """git's reason in parentheses (``stale info``), or the whole summary."""
        found = re.search(r"\((.*)\)\s*$", self.summary)
        return found.group(1) if found else self.summary


def check_remote_name(remote: str) -> str:
    if not _REMOTE_NAME.fullmatch(remote) or ".." in remote or remote.endswith((".", "/")):
        raise WorkspaceError(f"remote name {remote!r} is not a configured git remote's name")
    return remote


def fetch_ref(calls: GitCalls, remote: str, source: str, tracking: str) -> bool:
    """Fetch the remote's ``source`` ref into the local ``tracking`` ref (forced: a tracking
    ref only mirrors the remote); False when the remote has no ``source`` (the tracking ref
    is then left as it was). Any other failure (unreachable, no permission) is a
    ``GitError``."""
    return fetch_refs(calls, remote, [(source, tracking)])


def fetch_refs(calls: GitCalls, remote: str, pairs: Sequence[tuple[str, str]]) -> bool:
    """``fetch_ref`` of several ``(source, tracking)`` pairs in one fetch; False when the
    remote lacks one of the sources (then nothing is fetched: git fetches all or none)."""
    args = (
        *_QUIET,
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
        "--recurse-submodules=no",
        remote,
        *(f"+{source}:{tracking}" for source, tracking in pairs),
    )
    for pause in _PASSING:
        result = calls.run(*args, check=False)
        if result.ok or not any(sign in result.stderr for sign in _PASSING_SIGNS):
            break
        time.sleep(pause)
    if not result.ok:
        if _NO_REMOTE_REF in result.stderr:
            return False
        raise GitError(args, result.returncode, result.stderr)
    return True


# A fetch checks the new objects against every ref of the clone, worktree HEADs included; one
# caught while a worktree is being added or removed, or a ref another git of this clone is
# writing at that moment, fails it for a moment only: tried again after these pauses.
_PASSING = (0.05, 0.1, 0.2, 0.4, 0.0)
_PASSING_SIGNS = ("bad object", "did not send all necessary objects", "cannot lock ref")


def push_ref(calls: GitCalls, remote: str, commit: str, target: str, expected: str) -> str | None:
    """Set the remote's ``target`` to ``commit`` if it holds ``expected`` now (``""``: only if
    it does not exist). None when pushed (or it already held ``commit``); the reason when it
    had moved; ``RemotePushRefused`` for any other refusal."""
    args = (
        "push",
        "--porcelain",
        "--no-verify",
        "--no-signed",
        "--no-follow-tags",
        "--recurse-submodules=no",
        f"--force-with-lease={target}:{expected}",
        remote,
        f"{commit}:{target}",  # no "+": the lease is the only permission to replace
    )
    result = calls.run(*args, check=False)
    line = next((x for x in parse_porcelain(result.stdout) if x.target == target), None)
    if line is not None and line.ok and result.ok:
        return None
    server = _server_lines(result.stderr)
    if line is not None and not line.ok:
        reason = line.reason
        moved = line.summary.startswith("[rejected]") and reason in _MOVED
        if moved or (line.summary.startswith("[remote") and _server_moved([reason, *server])):
            return reason
        raise RemotePushRefused(remote, target, reason, server, args, result.returncode)
    detail = [x for x in result.stderr.strip().splitlines() if x.strip()] or ["no output"]
    raise RemotePushRefused(remote, target, detail[-1], server or detail, args, result.returncode)


def parse_porcelain(stdout: str) -> list[PushLine]:
    lines: list[PushLine] = []
    for raw in stdout.splitlines():
        parts = raw.split("\t")
        if len(parts) < 3 or len(parts[0]) != 1 or ":" not in parts[1]:
            continue  # "To <url>", "Done"
        source, _, target = parts[1].rpartition(":")
        lines.append(PushLine(parts[0], source, target, parts[2].strip()))
    return lines


def _server_moved(said: list[str]) -> bool:
    """The server's own compare-and-swap failed (its ``failed to update ref`` comes with a
    ``cannot lock ref '<ref>': is at <x> but expected <y>``): another push won inside it."""
    return any(marker in line for line in said for marker in _MOVED_SERVER)


def _server_lines(stderr: str) -> list[str]:
    """What the server said (``remote: ...`` lines), e.g. a hook's explanation."""
    lines = [x for x in stderr.splitlines() if x.startswith("remote:")]
    return [said for x in lines if (said := x.removeprefix("remote:").strip())]
