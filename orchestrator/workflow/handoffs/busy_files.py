"""The prompt section naming the files other sessions are on (their session context).

Each path once, in path order, with the tasks (or, for a context naming none, the sessions)
on it; at most ``BUSY_FILES_LIMIT`` paths, then how many more, and each path clipped to
``PATH_LIMIT`` characters, so a run of hundreds of files cannot crowd out the task. Nothing at
all when nobody else is on any file.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.state.context import BusyFile

__all__ = ["BUSY_FILES_LIMIT", "PATH_LIMIT", "render_busy_files"]

BUSY_FILES_LIMIT = 20
PATH_LIMIT = 200

HEADING = "## Files other sessions own"
LEAD = "Other sessions are changing these files; do not edit them:"


def render_busy_files(busy: Sequence[BusyFile], limit: int = BUSY_FILES_LIMIT) -> str:
    """The section for ``busy`` (see module doc); "" when it is empty."""
    whose: dict[str, list[str]] = {}
    for entry in busy:
        label = f"task {entry.task}" if entry.task else f"session {entry.session}"
        labels = whose.setdefault(entry.path, [])
        if label not in labels:
            labels.append(label)
    if not whose:
        return ""
    paths = sorted(whose)
    lines = [HEADING, LEAD]
    lines += [f"- {_clip(path)} ({', '.join(sorted(whose[path]))})" for path in paths[:limit]]
    if len(paths) > limit:
        lines.append(f"- ... and {len(paths) - limit} more")
    return "\n".join(lines) + "\n"


def _clip(path: str) -> str:
    return path if len(path) <= PATH_LIMIT else f"{path[: PATH_LIMIT - 3]}..."
