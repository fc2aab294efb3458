"""Scratch directories a killed process left behind in the machine's temporary directory.

The orchestrator makes private directories there (``mkdtemp``: mode 0700) and removes each when
it is done with it; a process killed in between (a ``SIGKILL``, a machine that lost power)
leaves its own for good. ``stale_dirs`` finds them for the room that made them, which knows
whether one may go: this user's directories with its prefix, once old enough that no live
process can still be using one (its maker removes what it finds; a live socket's stays)."""

from __future__ import annotations

import contextlib
import os
import time
from pathlib import Path

__all__ = ["stale_dirs"]


def stale_dirs(root: str, prefix: str, older_than: float) -> list[Path]:
    """This user's directories in ``root`` whose name starts with ``prefix``, last changed
    more than ``older_than`` seconds ago (blocking). Symbolic links are never followed."""
    found: list[Path] = []
    with contextlib.suppress(OSError), os.scandir(root) as entries:
        for entry in entries:
            if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                continue
            try:
                info = entry.stat(follow_symlinks=False)
            except OSError:
                continue
            if info.st_uid == os.getuid() and time.time() - info.st_mtime >= older_than:
                found.append(Path(entry.path))
    return found
