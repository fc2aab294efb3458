"""What changed between two versions of a record, field by field, with the values: what
``council state history`` and ``council state diff`` show.

Fields the store itself moves on every write (``version``, ``updated_at``) are left out, and
nested mappings (a task's ``metadata``, its ``phases``) are compared key by key, so a change
deep inside one reads as ``metadata.parks: 1 -> 2`` rather than as the whole mapping twice.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

__all__ = ["FieldChange", "field_changes"]

_MOVED_BY_EVERY_WRITE = frozenset({"version", "updated_at"})
_ABSENT: Any = object()


@dataclass(frozen=True)
class FieldChange:
    """``path`` (dotted) went from ``old`` to ``new``; ``added``/``removed`` when one side
    did not have it."""

    path: str
    old: Any = None
    new: Any = None
    added: bool = False
    removed: bool = False

    def text(self) -> str:
        if self.added:
            return f"{self.path}: + {_shown(self.new)}"
        if self.removed:
            return f"{self.path}: - {_shown(self.old)}"
        return f"{self.path}: {_shown(self.old)} -> {_shown(self.new)}"


def field_changes(old: Mapping[str, Any], new: Mapping[str, Any]) -> list[FieldChange]:
    """The fields that differ between two JSON-shaped versions of a record, sorted by path."""
    found: list[FieldChange] = []
    keys = {*old, *new} - _MOVED_BY_EVERY_WRITE
    for key in sorted(keys):
        _compare(str(key), old.get(key, _ABSENT), new.get(key, _ABSENT), found)
    return found


def _compare(path: str, old: Any, new: Any, found: list[FieldChange]) -> None:
    if old is not _ABSENT and new is not _ABSENT and old == new:
        return
    if isinstance(old, Mapping) and isinstance(new, Mapping):
        for key in sorted({*old, *new}):
            _compare(f"{path}.{key}", old.get(key, _ABSENT), new.get(key, _ABSENT), found)
        return
    if old is _ABSENT:
        found.append(FieldChange(path, new=new, added=True))
    elif new is _ABSENT:
        found.append(FieldChange(path, old=old, removed=True))
    else:
        found.append(FieldChange(path, old, new))


def _shown(value: Any) -> str:
    text = json.dumps(value, default=str, sort_keys=True)
    return text if len(text) <= 120 else text[:117] + "..."
