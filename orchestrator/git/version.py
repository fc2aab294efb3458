"""Which git this machine runs, and the oldest one CLI Council works with.

The merge queue computes merges with ``git merge-tree --write-tree`` (``merge_tree``), which
git 2.38 introduced; every other command the orchestrator runs is older than that.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import GitError
from orchestrator.git.repo import Git

__all__ = ["MINIMUM", "GitVersion", "git_version", "parse_git_version"]

MINIMUM = (2, 38)
_VERSION = re.compile(r"^git version (\d+)\.(\d+)(?:\.(\d+))?")


@dataclass(frozen=True)
class GitVersion:
    """``git --version``'s words and the numbers in them."""

    text: str
    numbers: tuple[int, int, int]

    @property
    def recent_enough(self) -> bool:
        return self.numbers[:2] >= MINIMUM


def parse_git_version(text: str) -> GitVersion | None:
    """``git version 2.39.5`` (also ``2.39.5.windows.1``, ``2.39.3 (Apple Git-146)``) read, or
    None when ``text`` is not git's answer."""
    line = text.strip().splitlines()[0] if text.strip() else ""
    found = _VERSION.match(line)
    if found is None:
        return None
    major, minor, patch = found.groups()
    return GitVersion(line, (int(major), int(minor), int(patch or 0)))


async def git_version() -> GitVersion | str:
    """The installed git's version, or why it could not be read (not installed, no answer)."""
    if shutil.which("git") is None:
        return "git is not on PATH"
    try:
        # Asked from the filesystem root: no repository is involved, and none can be found.
        result = await Git(Path("/"), None).run("--version", check=False)
    except GitError as exc:
        return str(exc)
    parsed = parse_git_version(result.stdout)
    if result.ok and parsed is not None:
        return parsed
    return f"`git --version` answered {(result.stdout or result.stderr).strip()[:200]!r}"
