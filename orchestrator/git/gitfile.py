"""A linked worktree's ``.git`` file: where its admin directory in the repository's git dir is.
A CLI can rewrite this file, so whoever writes there checks the answer stays under git's
common directory."""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["read_gitfile"]


def read_gitfile(worktree: Path) -> Path | None:
    """The admin directory a linked worktree's ``.git`` file points at (blocking)."""
    # Plain strings until the answer: read several times in every task's life.
    place = os.fspath(worktree)
    try:
        with open(os.path.join(place, ".git"), encoding="utf-8") as file:
            text = file.read()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    if not text.startswith("gitdir: "):
        return None
    target = text.removeprefix("gitdir: ").strip()
    return Path(os.path.normpath(os.path.join(place, target)))
