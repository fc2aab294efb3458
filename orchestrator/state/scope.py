"""Record namespaces that belong to one clone, kept apart in a store several clones share.

On a team's database every workstation's records meet, but some describe things only one
clone has: its worktrees, the CLI processes it started, its OS file locks and merge lock.
Another workstation must never read those as its own (it would take a worktree path of
another machine for one of its own, or a pid there for a process here). ``NamespaceScope``
stores such a namespace as ``<namespace>.<scope>`` (``scope``: an id of the clone) and hands
records back under their plain namespace, so the layers above never see the difference.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.models import KeyedRecord

__all__ = ["NamespaceScope"]


@dataclass(frozen=True)
class NamespaceScope:
    scope: str | None = None
    local: frozenset[str] = frozenset()

    @classmethod
    def of(cls, scope: str | None, local: Iterable[str]) -> NamespaceScope:
        return cls(scope, frozenset(local))

    def stored(self, namespace: str) -> str:
        """The namespace as kept in the store."""
        if self.scope is None or namespace not in self.local:
            return namespace
        return f"{namespace}.{self.scope}"

    def shown(self, namespace: str, record: KeyedRecord) -> KeyedRecord:
        """``record`` as the layer that wrote it in ``namespace`` knows it."""
        if record.namespace == namespace:
            return record
        return record.model_copy(update={"namespace": namespace})
