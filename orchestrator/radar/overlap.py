"""Two sessions' changes compared (pure): which files both change, which hunks touch.

The grades, from least to most (``Severity``):

- ``file``: both change a file, in line ranges that do not touch (different functions of one
  module): git merges them cleanly; a warning, worth knowing, never a reason to wait;
- ``hunks``: changes touch on the base's lines (``hunks.Hunk.touches``), or a binary file both
  change: likely to conflict, and what ``radar: sequence`` holds a task for;
- ``conflict``: a ``git merge-tree`` of the two tips conflicts (graded by ``engine``, which
  asks git only for a pair that shares a file).

No shared file: no collision.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum

from orchestrator.radar.hunks import FileDiff, Hunk

__all__ = ["FileOverlap", "PairOverlap", "Severity", "compare"]


class Severity(StrEnum):
    FILE = "file"
    HUNKS = "hunks"
    CONFLICT = "conflict"

    @property
    def rank(self) -> int:
        return _RANK[self]


_RANK = {Severity.FILE: 0, Severity.HUNKS: 1, Severity.CONFLICT: 2}


@dataclass(frozen=True, slots=True)
class FileOverlap:
    """One file both sessions change, and the pairs of their hunks that touch."""

    path: str
    touching: tuple[tuple[Hunk, Hunk], ...] = ()
    binary: bool = False

    @property
    def hunks_touch(self) -> bool:
        return bool(self.touching) or self.binary


@dataclass(frozen=True, slots=True)
class PairOverlap:
    files: tuple[FileOverlap, ...] = field(default_factory=tuple)

    @property
    def paths(self) -> list[str]:
        return [found.path for found in self.files]

    @property
    def severity(self) -> Severity | None:
        if not self.files:
            return None
        return Severity.HUNKS if any(f.hunks_touch for f in self.files) else Severity.FILE


def compare(ours: Mapping[str, FileDiff], theirs: Mapping[str, FileDiff]) -> PairOverlap:
    """What two sessions' diffs (``hunks.parse_diff``) share."""
    found: list[FileOverlap] = []
    for path in sorted(ours.keys() & theirs.keys()):
        mine, other = ours[path], theirs[path]
        if mine.whole() or other.whole():
            found.append(FileOverlap(path, binary=True))
            continue
        touching = tuple((a, b) for a in mine.hunks for b in other.hunks if a.touches(b))
        found.append(FileOverlap(path, touching))
    return PairOverlap(tuple(found))
