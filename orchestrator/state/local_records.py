"""Record namespaces that belong to one clone, kept on that clone's disk when the rest of the
state is shared.

On a team's database every workstation's records meet, but some describe things only one
clone has: its worktrees, the CLI processes it started, its OS file locks and merge lock.
Another workstation must never read those as its own (a worktree path of another machine, a
pid there taken for a process here), and they must not depend on the database being
reachable: a lock this process holds has to be released even while the database restarts.
``LocalRecords`` names such namespaces and the store that keeps them (the clone's own file
backend); the shared store hands every keyed-record call for them to it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from orchestrator.models import KeyedRecord
from orchestrator.state.carried import CarriedPut
from orchestrator.state.changes import RecordRef
from orchestrator.state.deletions import Deletion
from orchestrator.state.validators import Validators

__all__ = ["KeyedRecords", "LocalRecords", "Written"]

T = TypeVar("T")
U = TypeVar("U")
Written = tuple[list[KeyedRecord | None], list[bool]]


class KeyedRecords(Protocol):
    """The keyed-record half of ``StateStore``."""

    async def get_record(self, namespace: str, key: str) -> KeyedRecord | None: ...

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> KeyedRecord: ...

    async def put_made_record(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> tuple[KeyedRecord, T]: ...

    async def put_made_record_then(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> tuple[KeyedRecord, T, U]: ...

    async def put_made_record_while(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        over: Callable[[U], bool],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[KeyedRecord, T, U, bool]: ...

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool: ...

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]: ...

    async def put_and_delete_records(
        self, puts: Sequence[CarriedPut], deletions: Sequence[Deletion] = ()
    ) -> Written: ...

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]: ...

    async def list_records(self, namespace: str) -> list[KeyedRecord]: ...

    async def record_history(
        self,
        kind: str,
        key: str,
        *,
        limit: int | None = None,
        before_version: int | None = None,
    ) -> list[dict[str, Any]]: ...

    async def purge_expired(self, now: datetime | None = None) -> int: ...

    async def wait_for_update(
        self, ref: RecordRef[KeyedRecord], after_version: int, timeout: float | None = None
    ) -> KeyedRecord | None: ...

    async def aclose(self) -> None: ...

    @property
    def validators(self) -> Validators: ...


@dataclass(frozen=True)
class LocalRecords:
    store: KeyedRecords
    namespaces: frozenset[str]

    @classmethod
    def of(cls, store: KeyedRecords, namespaces: Iterable[str]) -> LocalRecords:
        return cls(store, frozenset(namespaces))

    def owns(self, namespace: str) -> bool:
        return namespace in self.namespaces

    async def put_and_delete_records(
        self,
        puts: Sequence[CarriedPut],
        deletions: Sequence[Deletion],
        shared: Callable[[list[CarriedPut], list[Deletion]], Awaitable[Written]],
    ) -> Written:
        """``put_and_delete_records`` of the clone's own namespaces in its store, the rest by
        ``shared`` (the shared store's call) after: two calls when both have some, one else;
        each answer in the order given."""
        mine = (
            [p for p in puts if self.owns(p.namespace)],
            [d for d in deletions if self.owns(d.namespace)],
        )
        rest = (
            [p for p in puts if not self.owns(p.namespace)],
            [d for d in deletions if not self.owns(d.namespace)],
        )
        here: Written = ([], [])
        there: Written = ([], [])
        if mine[0] or mine[1]:
            here = await self.store.put_and_delete_records(*mine)
        if rest[0] or rest[1]:
            there = await shared(*rest)
        local_puts, shared_puts = iter(here[0]), iter(there[0])
        local_gone, shared_gone = iter(here[1]), iter(there[1])
        written = [next(local_puts if self.owns(p.namespace) else shared_puts) for p in puts]
        found = [next(local_gone if self.owns(d.namespace) else shared_gone) for d in deletions]
        return written, found
