"""Safe ids: the one rule every task, session, adapter and checkpoint id follows.

Ids end up in file names, branch names and lock names, so the rule is strict enough that an id
can never climb out of a directory (``../x``), hide (``.x``) or surprise git: on top of the
characters, git's own rules for a ref name's component (``git check-ref-format``) that those
characters could still break: no ``..``, no ``.lock`` at the end (git keeps its lock files
there), and no ``.`` at the end (git refuses a ref ending in one, and an id derived from it,
``<id>.<suffix>``, would hold ``..``). So an id that passes is one git takes, and so is every
id derived from it (``derived_id``), checked once, before anything is written.
"""

from __future__ import annotations

import re
from typing import TypeGuard

from orchestrator.errors import InvalidIdError

__all__ = ["ID_PATTERN", "check_id", "derived_id", "is_commit_id", "is_safe_id"]

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


def is_safe_id(value: str) -> bool:
    """True when ``value`` matches the safe-id rule (see the module doc)."""
    return (
        bool(_ID_RE.fullmatch(value)) and ".." not in value and not value.endswith((".", ".lock"))
    )


def check_id(value: str, kind: str = "id") -> str:
    """Return ``value`` unchanged, or raise ``InvalidIdError`` naming what was wrong."""
    if not isinstance(value, str) or not is_safe_id(value):
        raise InvalidIdError(
            f"{kind} {value!r} is not a safe id: use 1-64 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit, with no '..' and not ending in '.' or '.lock' "
            "(git's rules for a ref name)"
        )
    return value


def derived_id(base: str, suffix: str, limit: int = 64) -> str:
    """``<base>.<suffix>``, ``base`` cut so the whole fits ``limit`` characters and never ends
    in a dot (which would make ``..``): safe whenever ``base`` and ``suffix`` are."""
    room = max(limit - len(suffix) - 1, 1)
    return f"{base[:room].rstrip('.')}.{suffix}"


_COMMIT_ID = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")


def is_commit_id(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a full git object id (SHA-1 or SHA-256, lower-case hex): what a
    commit read from a record, a teammate or a forge must be before git is given it."""
    return isinstance(value, str) and _COMMIT_ID.fullmatch(value) is not None
