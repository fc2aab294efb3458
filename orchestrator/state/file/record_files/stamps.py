"""What this process last saw of a record, kept by the identity of the file it saw it in.

A record file is replaced whole on every write (or made once, in place, by a batch), so its
identity (inode, size, modification and change times: ``layout``) changes with any write by
any process, and a file whose identity is the one a record was read from (or written as) still
holds that record. ``Stamps`` keeps, per key, that identity and a small *stamp* of the record
(a task's version, update time and session; a session's task ids): a stat of the file then
tells whether the record is still the one stamped, without reading or parsing it
(``FileTasks.list_tasks_changed``).

Every entry is a fact about a file identity, true for as long as the identity names a file, so
an entry never needs taking back when the file changes (the identity no longer matches); one
a thread notes late (another thread's newer one overwritten) only costs a read. Keys are kept
only once asked for (``track``): reads and writes of this process update those, so a record
this process wrote since is not read again, and a record deleted is forgotten.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

from pydantic import BaseModel

from orchestrator.state.file.record_files.layout import Identity

__all__ = ["Stamps"]

M = TypeVar("M", bound=BaseModel)


class Stamps(Generic[M]):
    """Key -> (the identity of the file a record was seen in, the record's stamp)."""

    def __init__(self, stamp: Callable[[M], Hashable]) -> None:
        self.stamp = stamp
        self._seen: dict[str, tuple[Identity, Hashable]] = {}

    def __contains__(self, key: str) -> bool:
        return key in self._seen

    def __len__(self) -> int:
        return len(self._seen)

    def saw(self, key: str, identity: Identity, record: M, *, track: bool = False) -> None:
        """``record`` is what the file of identity ``identity`` holds: kept when ``key`` is
        tracked already, or ``track``."""
        if track or key in self._seen:
            self._seen[key] = (identity, self.stamp(record))

    def stamp_at(self, key: str, identity: Identity) -> Hashable | None:
        """The stamp of the record the file of ``identity`` holds, when it is the one seen last
        for ``key``; None: not known (read it)."""
        seen = self._seen.get(key)
        if seen is None or seen[0] != identity:
            return None
        return seen[1]

    def forget(self, key: str) -> None:
        self._seen.pop(key, None)
