"""Readers of git's machine output (``-z`` forms only, so any byte in a path is safe). Pure
functions (a worktree's ``.git`` file is ``gitfile``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "RawWorktree",
    "Status",
    "covered_by",
    "parse_numstat",
    "parse_status",
    "parse_worktree_list",
]


@dataclass(frozen=True)
class Status:
    """``git status --porcelain=v2 --branch -z --untracked-files=all``."""

    head: str | None  # None before the first commit
    branch: str | None  # short name; None when HEAD is detached
    paths: list[str] = field(default_factory=list)  # changed, conflicted or untracked

    def work(self, keep_out: Iterable[str]) -> list[str]:
        """Changed paths that are the session's work (not the orchestrator's copied files)."""
        kept = list(keep_out)
        return [path for path in self.paths if not covered_by(path, kept)]


def parse_status(out: str) -> Status:
    head: str | None = None
    branch: str | None = None
    paths: list[str] = []
    tokens = iter(out.split("\0"))
    for token in tokens:
        if token.startswith("# branch.oid "):
            oid = token.removeprefix("# branch.oid ")
            head = None if oid == "(initial)" else oid
        elif token.startswith("# branch.head "):
            name = token.removeprefix("# branch.head ")
            branch = None if name == "(detached)" else name
        elif token.startswith("1 "):
            paths.append(token.split(" ", 8)[8])
        elif token.startswith("2 "):
            paths.append(token.split(" ", 9)[9])
            paths.append(next(tokens, ""))  # a rename's source, which is gone from the tree
        elif token.startswith("u "):
            paths.append(token.split(" ", 10)[10])
        elif token.startswith("? "):
            paths.append(token[2:])
    return Status(head, branch, [path for path in paths if path])


def covered_by(path: str, prefixes: Iterable[str]) -> bool:
    """True when ``path`` is one of ``prefixes`` or inside one of them (a directory)."""
    path = path.rstrip("/")
    return any(path == prefix or path.startswith(prefix + "/") for prefix in prefixes)


@dataclass(frozen=True)
class RawWorktree:
    """One record of ``git worktree list --porcelain -z``."""

    path: Path
    head: str | None = None
    branch_ref: str | None = None
    detached: bool = False
    bare: bool = False
    locked: bool = False
    lock_reason: str | None = None
    prunable: bool = False


def parse_worktree_list(out: str) -> list[RawWorktree]:
    records: list[RawWorktree] = []
    fields: dict[str, str | None] = {}
    # Records are separated by an empty token; the output ends with one too.
    for token in [*out.split("\0"), ""]:
        if token:
            key, _, value = token.partition(" ")
            fields[key] = value if value or key not in ("locked", "prunable") else None
            continue
        if "worktree" in fields:
            records.append(
                RawWorktree(
                    path=Path(fields["worktree"] or ""),
                    head=fields.get("HEAD"),
                    branch_ref=fields.get("branch"),
                    detached="detached" in fields,
                    bare="bare" in fields,
                    locked="locked" in fields,
                    lock_reason=fields.get("locked"),
                    prunable="prunable" in fields,
                )
            )
        fields = {}
    return records


def parse_numstat(out: str) -> tuple[int, int, int]:
    """(files, insertions, deletions) of ``git diff --numstat -z --no-renames``; a binary
    file counts as a changed file with no lines."""
    files = insertions = deletions = 0
    for token in out.split("\0"):
        parts = token.split("\t", 2)
        if len(parts) != 3:
            continue
        files += 1
        insertions += int(parts[0]) if parts[0].isdigit() else 0
        deletions += int(parts[1]) if parts[1].isdigit() else 0
    return files, insertions, deletions
