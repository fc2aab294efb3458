"""What a session is told of its collisions at its next phase, and why a task waits (pure).

``render_warning`` is a compact prompt section: for each live collision of the task, the other
task (and workstation), the shared paths, the touching line ranges, whether a merge of the two
branches conflicts, and a short diff of what the other side changed there. At most
``WARNING_LIMIT`` collisions, most severe first; nothing at all without one.

``waits_for`` is the reason ``radar: sequence`` holds a task not started yet: the first live
collision graded ``hunks`` or ``conflict`` on one of the task's declared files (a ``file``
overlap merges cleanly and holds nothing).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from orchestrator.radar.overlap import Severity
from orchestrator.radar.records import Collision

__all__ = ["HEADING", "WARNING_LIMIT", "holding", "render_warning", "waits_for"]

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
            lines.append(f"  What task {other.task_id} changed there:")
            lines.append("  ```diff")
            lines += [f"  {line}" for line in other.diff.splitlines()]
            lines.append("  ```")
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
