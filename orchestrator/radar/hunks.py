"""A ``git diff -U0`` read into each file's changed line ranges on the base side (pure).

A hunk header ``@@ -a,b +c,d @@`` says the base's lines ``a`` .. ``a+b-1`` were replaced (``b``
may be 0: lines inserted after base line ``a``). Two sessions collide on a file when a hunk of
one touches a hunk of the other on the base's lines: ``Hunk.touches`` counts a shared line, an
insertion at a line the other changes, and two changes that merely abut (git's merge reports
adjacent changes as a conflict too). Each file keeps its own part of the diff, for the short
diff a warning shows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

__all__ = ["FileDiff", "Hunk", "parse_diff"]

_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
_PATH = re.compile(r'^diff --git (?:"?a/)(.*?)"? (?:"?b/)(.*?)"?$')


@dataclass(frozen=True, slots=True)
class Hunk:
    """The base's lines ``start`` .. ``start + count - 1`` changed; ``count`` 0: an insertion
    after line ``start``."""

    start: int
    count: int

    @property
    def first(self) -> int:
        return self.start if self.count else self.start + 1

    @property
    def last(self) -> int:
        return self.start + self.count - 1 if self.count else self.start

    def touches(self, other: Hunk) -> bool:
        """True when the two changes share a base line or abut (see module doc)."""
        return self.first <= other.last + 1 and other.first <= self.last + 1

    def label(self) -> str:
        if not self.count:
            return f"after line {self.start}"
        return f"line {self.first}" if self.count == 1 else f"lines {self.first}-{self.last}"


@dataclass(slots=True)
class FileDiff:
    """One file's part of a diff: its hunks on the base side and its text."""

    path: str
    hunks: list[Hunk] = field(default_factory=list)
    text: list[str] = field(default_factory=list)
    binary: bool = False

    def whole(self) -> bool:
        """A binary file (no lines to compare): any other change of it collides."""
        return self.binary


def parse_diff(text: str) -> dict[str, FileDiff]:
    """Each changed file of ``git diff -U0 --no-color`` output, by its path (the new path of a
    rename; the old one of a deletion)."""
    files: dict[str, FileDiff] = {}
    current: FileDiff | None = None
    for line in text.splitlines():
        if line.startswith("diff --git "):
            match = _PATH.match(line)
            path = match.group(2) if match else line.rsplit(" b/", 1)[-1]
            current = files.setdefault(path, FileDiff(path))
            current.text.append(line)
            continue
        if current is None:
            continue
        current.text.append(line)
        if line.startswith("@@ "):
            header = _HEADER.match(line)
            if header is not None:
                count = 1 if header.group(2) is None else int(header.group(2))
                current.hunks.append(Hunk(int(header.group(1)), count))
        elif line.startswith("Binary files ") or line == "GIT binary patch":
            current.binary = True
    return files
