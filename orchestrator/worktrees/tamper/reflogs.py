"""A task's reflogs, the part of git's bookkeeping a sandboxed CLI reaches: read before a
session, checked after it (blocking: call it in a worker thread).

Under a sandbox a CLI writes, besides its worktree, its task's ref directory and the reflog
directory beside it, ``logs/refs/heads/council/<task>/`` (git appends a line there for each of
its commits on its own branch). ``git fsck`` reads every reflog: a line that is no reflog line,
one naming an object the repository lacks, or a reflog of no ref makes the user's ``git fsck``
fail, and would stay as long as the branch is kept for a human to review.

- ``sizes(common, task)``: the size of every reflog under the task's directory, at the watch;
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

__all__ = ["check", "sizes"]

_LINE = re.compile(
    rb"^(?P<old>[0-9a-f]{40}|[0-9a-f]{64}) (?P<new>[0-9a-f]{40}|[0-9a-f]{64}) "
    rb"[^\n]* [0-9]+ [+-][0-9]{4}(\t[^\n]*)?$"
)
_ZERO = re.compile(rb"^0+$")


def _directory(common: Path, task: str) -> Path:
    return common / "logs" / "refs" / "heads" / "council" / task


def sizes(common: Path, task: str) -> dict[str, int]:
    """``refs/heads/council/<task>/...`` -> the size of its reflog, for every one there."""
    top = _directory(common, task)
    found: dict[str, int] = {}
    for root, _dirs, names in os.walk(top):
        for name in names:
            path = Path(root) / name
            try:
                found[_ref(common, path)] = os.lstat(path).st_size
            except OSError:
                continue
    return found


def check(
    git: Git, common: Path, task: str, before: dict[str, int], present: Collection[str]
) -> list[tuple[str, str]]:
    """What was put right in the task's reflogs since ``before`` (module doc): ``(ref, line)``."""
    changes: list[tuple[str, str]] = []
    added: dict[str, tuple[int, list[bytes]]] = {}
    for ref, size in sizes(common, task).items():
        path = common / "logs" / ref
        if ref not in present:
            try:
                safe_write.unlink(common, path)
            except FileNotFoundError:
                continue
            changes.append((ref, f"logs/{ref}: a reflog of no ref (removed)"))
            continue
        start = before.get(ref, 0)
        if size == start:
            continue
        try:
            with open(path, "rb") as handle:
                data = handle.read()
        except OSError:
            continue
        if len(data) < start:  # rewritten shorter: read it all again
            start = 0
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
        with open(path, "rb") as handle:
            head = handle.read(start)
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
