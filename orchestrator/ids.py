"""Safe ids: the one rule every task, session, adapter and checkpoint id follows.

Ids end up in file names, branch names and lock names, so the rule is strict enough that an id
can never climb out of a directory (``../x``), hide (``.x``) or surprise git.
"""

from __future__ import annotations

import re
from typing import Annotated

from pydantic import AfterValidator

from orchestrator.errors import InvalidIdError

__all__ = ["ID_PATTERN", "SafeId", "check_id", "is_safe_id"]

ID_PATTERN = r"^[a-z0-9][a-z0-9._-]{0,63}$"
_ID_RE = re.compile(ID_PATTERN)


def is_safe_id(value: str) -> bool:
    """True when ``value`` matches the safe-id rule (and holds no ``..``)."""
    return bool(_ID_RE.fullmatch(value)) and ".." not in value


def check_id(value: str, kind: str = "id") -> str:
    """Return ``value`` unchanged, or raise ``InvalidIdError`` naming what was wrong."""
    if not isinstance(value, str) or not is_safe_id(value):
        raise InvalidIdError(
            f"{kind} {value!r} is not a safe id: use 1-64 characters of a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit, with no '..'"
        )
    return value


def _pydantic_check(value: str) -> str:
    try:
        return check_id(value)
    except InvalidIdError as exc:
        raise ValueError(str(exc)) from None


SafeId = Annotated[str, AfterValidator(_pydantic_check)]
"""A ``str`` field that must be a safe id (pydantic reports the field when it is not)."""
