"""How the store names a kind of record (``record_history``, record rules, watchers):
``tasks``, ``sessions``, ``counters``, or ``records/<namespace>`` for the keyed records of
another layer."""

from __future__ import annotations

from orchestrator.errors import StateError
from orchestrator.ids import check_id

__all__ = ["KINDS", "RecordKindName", "keyed_kind", "parse_kind"]

KINDS = ("tasks", "sessions", "counters")
_RECORDS = "records/"

RecordKindName = tuple[str, str | None]
"""(``tasks``/``sessions``/``counters``, None) or (``records``, the namespace)."""


def keyed_kind(namespace: str) -> str:
    """The kind of the keyed records of ``namespace``."""
    return f"{_RECORDS}{namespace}"


def parse_kind(kind: str) -> RecordKindName:
    """The kind named by ``kind``; ``StateError`` naming the choices when it names none."""
    if kind in KINDS:
        return kind, None
    if kind.startswith(_RECORDS):
        return "records", check_id(kind[len(_RECORDS) :], "record namespace")
    raise StateError(f"no record kind {kind!r}: one of {', '.join(KINDS)} or records/<namespace>")
