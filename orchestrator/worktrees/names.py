"""What the orchestrator's branches and refs are called, and the ids and paths it builds them from.

Session branches are ``council/<task>/<n>``; a session's saved tip is
``refs/council/rescue/<session>``; git's worktree lock holds the reason ``council session=<id>
cli=<name> task=<id>``. Ids are safe ids that also may not end in ``.lock`` (git refuses such ref
names), and every path built from one is checked to stay under its root."""

from __future__ import annotations

import os
import re
from pathlib import Path

from orchestrator.errors import InvalidIdError, PathEscapeError
from orchestrator.ids import check_id, is_safe_id

__all__ = [
    "RESCUE_PREFIX",
    "branch_name",
    "check_inside",
    "check_ref_id",
    "lock_reason",
    "parse_lock_reason",
    "rescue_ref",
]

RESCUE_PREFIX = "refs/council/rescue/"
_REASON = re.compile(r"^council session=(?P<session>\S+) cli=(?P<cli>\S+) task=(?P<task>\S+)$")


def check_ref_id(value: str, kind: str) -> str:
    """A safe id that can also be a ref component (git refuses components ending in .lock)."""
    check_id(value, kind)
    if value.endswith(".lock"):
        raise InvalidIdError(f"{kind} {value!r} ends in '.lock', which git refuses in ref names")
    return value


def branch_name(task_id: str, attempt: int) -> str:
    return f"council/{task_id}/{attempt}"


def rescue_ref(session_id: str) -> str:
    return f"{RESCUE_PREFIX}{session_id}"


def lock_reason(session_id: str, cli: str, task_id: str) -> str:
    """The reason ``git worktree lock`` records; it names the owner even without a store."""
    return f"council session={session_id} cli={cli} task={task_id}"


def parse_lock_reason(reason: str | None) -> tuple[str, str, str] | None:
    """(session, cli, task) from a reason ``lock_reason`` wrote, else None (also when a
    hand-written reason holds anything but safe ids)."""
    match = _REASON.match(reason or "")
    if match is None:
        return None
    found = (match["session"], match["cli"], match["task"])
    return found if all(is_safe_id(value) for value in found) else None


def check_inside(root: Path, path: Path) -> Path:
    """``path`` made absolute and normalized, or ``PathEscapeError`` if it leaves ``root``.

    Lexical only: callers pass roots that are already resolved and components that are safe
    ids; ``paths.ensure_under`` is the check that also follows symlinks.
    """
    absolute = Path(os.path.normpath(root / path))
    if absolute != root and root not in absolute.parents:
        raise PathEscapeError(f"{path} resolves outside {root}")
    return absolute
