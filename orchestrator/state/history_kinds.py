"""How ``StateStore.record_history`` names a kind of record: ``tasks``, ``sessions``,
``counters``, or ``records/<namespace>`` for the keyed records of another layer."""

from __future__ import annotations

from orchestrator.errors import StateError
from orchestrator.ids import check_id

__all__ = ["KINDS", "RecordKindName", "parse_kind"]

KINDS = ("tasks", "sessions", "counters")
_RECORDS = "records/"

RecordKindName = tuple[str, str | None]
"""(``tasks``/``sessions``/``counters``, None) or (``records``, the namespace)."""


def parse_kind(kind: str) -> RecordKindName:
    """The kind named by ``kind``; ``StateError`` naming the choices when it names none."""
    if kind in KINDS:
        return kind, None
    if kind.startswith(_RECORDS):
        return "records", check_id(kind[len(_RECORDS) :], "record namespace")
    raise StateError(f"no record kind {kind!r}: one of {', '.join(KINDS)} or records/<namespace>")
