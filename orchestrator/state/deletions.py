"""The records one store call deletes (``StateStore.delete_records``): each named by namespace
and key, with the version it must be at (``None``: any; ``0``: none there), checked before the
store is asked: a bad id, or one record named twice, is refused naming which."""

from __future__ import annotations

from collections.abc import Iterable
from typing import NamedTuple

from orchestrator.ids import check_id

__all__ = ["Deletion", "checked"]


class Deletion(NamedTuple):
    """One record to delete, as ``delete_record(namespace, key, expected_version)`` would."""

    namespace: str
    key: str
    expected_version: int | None = None


def checked(items: Iterable[Deletion]) -> list[Deletion]:
    """``items`` as a list, each a ``Deletion`` with safe ids, none named twice."""
    found: list[Deletion] = []
    seen: set[tuple[str, str]] = set()
    for at, item in enumerate(items):
        if not isinstance(item, Deletion):
            raise TypeError(f"deletion {at} is not a Deletion: {item!r}")
        namespace, key, expected = item
        check_id(namespace, "record namespace")
        check_id(key, f"{namespace} key")
        if expected is not None and (isinstance(expected, bool) or expected < 0):
            where = f"deletion {at} ({namespace}/{key})"
            raise ValueError(f"{where}: bad expected version {expected!r}")
        if (namespace, key) in seen:
            raise ValueError(f"deletion {at}: record {namespace}/{key} is named twice")
        seen.add((namespace, key))
        found.append(item)
    return found
