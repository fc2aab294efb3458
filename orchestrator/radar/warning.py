"""What a session is told of its collisions at its next phase, and why a task waits (pure).

``render_warning`` is a compact prompt section: for each live collision of the task, the other
task (and workstation), the shared paths, the touching line ranges, whether a merge of the two
branches conflicts, and a short diff of what the other side changed there. At most
``WARNING_LIMIT`` collisions, most severe first; nothing at all without one.

``marks`` is each task's mark in ``council status`` and the live view: ``collides with
task-b on src/x.py (conflict)``, the most severe of its collisions, and how many more.

``waits_for`` is the reason ``radar: sequence`` holds a task not started yet: the first live
collision graded ``hunks`` or ``conflict`` on one of the task's declared files (a ``file``
overlap merges cleanly and holds nothing).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

from orchestrator.radar.overlap import Severity
from orchestrator.radar.records import Collision

__all__ = ["HEADING", "WARNING_LIMIT", "holding", "marks", "render_warning", "waits_for"]

HEADING = "## Sessions whose changes overlap yours (collision radar)"
LEAD = (
    "Other live sessions are changing the same code. Keep your change apart from theirs where "
    "you can; what you both change will have to merge."
)
WARNING_LIMIT = 5
_WHAT = {
    Severity.FILE: "the same file, other lines",
    Severity.HUNKS: "the same lines",
    Severity.CONFLICT: "the same lines; a merge of your branches conflicts",
}


def render_warning(found: Sequence[Collision], task_id: str, limit: int = WARNING_LIMIT) -> str:
    """The section for ``task_id``'s collisions in ``found`` (see module doc); "" when none."""
    mine = [c for c in found if c.involves(task_id)]
    if not mine:
        return ""
    mine.sort(key=lambda c: (-c.severity.rank, c.paths))
    lines = [HEADING, LEAD]
    for collision in mine[:limit]:
        other = collision.other(task_id)
        where = f" on workstation {other.workstation}" if other.workstation else ""
        lines.append(
            f"- task {other.task_id}{where} changes {', '.join(collision.paths)}: "
            f"{_WHAT[collision.severity]}"
            + (f" (on {', '.join(collision.conflict_paths)})" if collision.conflict else "")
        )
        ours_first = collision.a.task_id == task_id
        for pair in collision.hunks[:4]:
            yours, theirs = (pair.a, pair.b) if ours_first else (pair.b, pair.a)
            lines.append(f"  - {pair.path}: your {yours}, their {theirs}")
        if other.diff:
            # Another CLI wrote this: a fence longer than any run of backticks in it, so no
            # line of it can close the block and speak as the prompt (CommonMark's rule).
            fence = "`" * max(3, _longest_backticks(other.diff) + 1)
            lines.append(f"  What task {other.task_id} changed there:")
            lines.append(f"  {fence}diff")
            lines += [f"  {line}" for line in other.diff.splitlines()]
            lines.append(f"  {fence}")
    if len(mine) > limit:
        lines.append(f"- ... and {len(mine) - limit} more")
    return "\n".join(lines) + "\n"


def holding(found: Iterable[Collision], files: Iterable[str]) -> Collision | None:
    """The first live collision graded ``hunks`` or ``conflict`` on one of ``files``."""
    wanted = set(files)
    for collision in found:
        if collision.severity != Severity.FILE and wanted & set(collision.paths):
            return collision
    return None


def waits_for(collision: Collision, files: Iterable[str]) -> str:
    """The reason a task waits for ``collision`` (``holding``'s answer)."""
    shared = sorted(set(files) & set(collision.paths))
    a, b = collision.tasks
    return f"waits for collision between {a} and {b} on {', '.join(shared)}"


def marks(found: Iterable[Collision]) -> dict[str, str]:
    """Each task in a live collision -> its mark (see module doc)."""
    by_task: dict[str, list[Collision]] = {}
    for collision in found:
        for task_id in collision.tasks:
            by_task.setdefault(task_id, []).append(collision)
    shown = {}
    for task_id, mine in by_task.items():
        mine.sort(key=lambda c: (-c.severity.rank, c.paths))
        first = mine[0]
        paths = first.paths[:2] + (["..."] if len(first.paths) > 2 else [])
        text = (
            f"collides with {first.other(task_id).task_id} on {', '.join(paths)} "
            f"({first.severity.value})"
        )
        shown[task_id] = text + (f" and {len(mine) - 1} more" if len(mine) > 1 else "")
    return shown


def _longest_backticks(text: str) -> int:
    return max((len(run) for run in re.findall(r"`+", text)), default=0)
