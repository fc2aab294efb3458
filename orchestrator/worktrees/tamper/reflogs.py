"""A task's reflogs, the part of git's bookkeeping a sandboxed CLI reaches: read before a
session, checked after it (blocking: call it in a worker thread).

Under a sandbox a CLI writes, besides its worktree, its task's ref directory and the reflog
directory beside it, ``logs/refs/heads/council/<task>/`` (git appends a line there for each of
its commits on its own branch). ``git fsck`` reads every reflog: a line that is no reflog line,
one naming an object the repository lacks, or a reflog of no ref makes the user's ``git fsck``
fail, and would stay as long as the branch is kept for a human to review.

- ``read(common, task)``: every reflog under the task's directory, at the watch;
- ``check(git, common, task, before, present)``: a reflog of no ref (``present``: the refs of
  the namespace now) is removed; the lines added to one since the watch are kept only when they
  are reflog lines naming commits the repository has (one ``rev-list --ignore-missing`` for
  them all, and only when lines were added: when a CLI committed); the others are dropped and the
  file written anew. One line per reflog changed, for a human. Lines git wrote before the
  watch are not read again.
"""

from __future__ import annotations

import os
import re
from collections.abc import Collection
from pathlib import Path

from orchestrator.git.repo import Git
from orchestrator.safety import safe_write

__all__ = ["check", "read"]

_LINE = re.compile(
    rb"^(?P<old>[0-9a-f]{40}|[0-9a-f]{64}) (?P<new>[0-9a-f]{40}|[0-9a-f]{64}) "
    rb"[^\n]* [0-9]+ [+-][0-9]{4}(\t[^\n]*)?$"
)
_ZERO = re.compile(rb"^0+$")
_CAP = 256 * 1024  # a reflog past this is not a session's few lines: not read (left to git)


def _directory(common: Path, task: str) -> Path:
    return common / "logs" / "refs" / "heads" / "council" / task


def read(common: Path, task: str) -> dict[str, bytes]:
    """``refs/heads/council/<task>/...`` -> its reflog's content, for every one there (a
    session's reflogs hold a line per commit: small)."""
    top = _directory(common, task)
    found: dict[str, bytes] = {}
    for root, _dirs, names in os.walk(top):
        for name in names:
            path = Path(root) / name
            try:
                with open(path, "rb") as handle:
                    found[_ref(common, path)] = handle.read(_CAP)
            except OSError:
                continue
    return found


def check(
    git: Git, common: Path, task: str, before: dict[str, bytes], present: Collection[str]
) -> list[tuple[str, str]]:
    """What was put right in the task's reflogs since ``before`` (module doc): ``(ref, line)``."""
    changes: list[tuple[str, str]] = []
    added: dict[str, tuple[int, list[bytes]]] = {}
    for ref, data in read(common, task).items():
        path = common / "logs" / ref
        if ref not in present:
            try:
                safe_write.unlink(common, path)
            except FileNotFoundError:
                continue
            changes.append((ref, f"logs/{ref}: a reflog of no ref (removed)"))
            continue
        seen = before.get(ref, b"")
        if data == seen or len(data) >= _CAP:
            continue
        # Lines appended to what the watch saw; a log written anew (deleted, made again) is
        # read whole.
        start = len(seen) if data.startswith(seen) else 0
        added[ref] = (start, data[start:].splitlines(keepends=True))
    if not added:
        return changes
    wanted = {
        match["new"]
        for _start, lines in added.values()
        for line in lines
        if (match := _LINE.match(line.rstrip(b"\n"))) is not None and not _ZERO.match(match["new"])
    }
    have = _existing(git, wanted)
    for ref, (start, lines) in sorted(added.items()):
        kept = [line for line in lines if _good(line, have)]
        if len(kept) == len(lines):
            continue
        path = common / "logs" / ref
        head = before.get(ref, b"")[:start]
        safe_write.write_atomic(common, path, head + b"".join(kept))
        dropped = len(lines) - len(kept)
        changes.append(
            (
                ref,
                f"logs/{ref}: {dropped} line(s) not a reflog line or naming a missing commit "
                "(dropped)",
            )
        )
    return changes


def _good(line: bytes, have: set[bytes]) -> bool:
    match = _LINE.match(line.rstrip(b"\n"))
    if match is None or not line.endswith(b"\n"):
        return False
    return bool(_ZERO.match(match["new"])) or match["new"] in have


def _existing(git: Git, ids: set[bytes]) -> set[bytes]:
    """Which of ``ids`` name commits the repository has (one git process; a branch's reflog
    names commits)."""
    if not ids:
        return set()
    asked = sorted(value.decode() for value in ids)
    result = git.run_sync("rev-list", "--no-walk", "--ignore-missing", *asked, check=False)
    return {line.encode() for line in result.stdout.split()}


def _ref(common: Path, path: Path) -> str:
    return path.relative_to(common / "logs").as_posix()
