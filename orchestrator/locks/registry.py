"""Layer 2 of the locks: the ownership registry and the wait-for graph, kept as keyed records.

Three namespaces of the state store (or of ``MemoryRecords`` when a ``LockManager`` runs
without one, which makes the registry visible to that manager only):

- ``file-owners/<sha256 of path>``: ``path, session, token, since`` and the holder's process
  identity. Written (compare-and-set on its version) only by a holder of the path's OS lock, and
  deleted by it before it lets go of the OS lock, so a live entry always has its OS lock held.
- ``session-locks/<session>``: the paths a session holds, for ``release_all`` after a crash. It
  is a hint that may list more than the session holds (it is written before the owner entry):
  every use checks the owner entry.
- ``lock-waits/<session>``: the path a waiting session waits for and who held it when seen.

Every entry describes a live process, so it is written with ``durable=False``: atomic and
seen by every process at once, but not fsynced. A machine crash may lose an entry, and that
crash also ended the process it described; the OS locks under it went with it too.

The registry never decides anything by itself; ``LockManager`` holds the rules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

import anyio.to_thread

from orchestrator.errors import StateError, VersionConflict
from orchestrator.process import procid
from orchestrator.process.procid import ProcessId

__all__ = [
    "FILE_OWNERS",
    "LOCK_WAITS",
    "SESSION_LOCKS",
    "MemoryRecords",
    "Owner",
    "OwnerRegistry",
    "Records",
    "Wait",
    "find_cycle",
]

FILE_OWNERS = "file-owners"
SESSION_LOCKS = "session-locks"
LOCK_WAITS = "lock-waits"

T = TypeVar("T")
U = TypeVar("U")


class RecordView(Protocol):
    @property
    def version(self) -> int: ...

    @property
    def data(self) -> dict[str, Any]: ...


class Records(Protocol):
    """The keyed-record half of ``StateStore``, all the registry needs."""

    async def get_record(self, namespace: str, key: str) -> RecordView | None: ...

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> RecordView: ...

    async def put_made_record(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[RecordView, T]: ...

    async def put_made_record_then(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[RecordView, T, U]: ...

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
    ) -> tuple[RecordView, T, U, bool]: ...

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool: ...

    async def list_records(self, namespace: str) -> Sequence[RecordView]: ...


@dataclass(frozen=True, slots=True)
class _MemoryRecord:
    version: int
    data: dict[str, Any]


class MemoryRecords:
    """Keyed records in a dict, with the store's compare-and-set rules (one process only)."""

    def __init__(self) -> None:
        self._records: dict[tuple[str, str], _MemoryRecord] = {}

    async def get_record(self, namespace: str, key: str) -> _MemoryRecord | None:
        return self._records.get((namespace, key))

    async def put_record(
        self,
        namespace: str,
        key: str,
        data: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> _MemoryRecord:
        current = self._check(namespace, key, expected_version)
        record = _MemoryRecord((current.version if current else 0) + 1, dict(data))
        self._records[namespace, key] = record
        return record

    async def put_made_record(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[_MemoryRecord, T]:
        data, rest = await anyio.to_thread.run_sync(make)
        return await self.put_record(namespace, key, data, expected_version), rest

    async def put_made_record_then(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        then: Callable[[T], U],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[_MemoryRecord, T, U]:
        record, rest = await self.put_made_record(namespace, key, make, expected_version)
        return record, rest, await anyio.to_thread.run_sync(then, rest)

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
    ) -> tuple[_MemoryRecord, T, U, bool]:
        record, rest, answer = await self.put_made_record_then(
            namespace, key, make, then, expected_version
        )
        if not over(answer):
            return record, rest, answer, False
        return record, rest, answer, await self.delete_record(namespace, key, record.version)

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        return (
            self._check(namespace, key, expected_version) is not None
            and self._records.pop((namespace, key), None) is not None
        )

    async def list_records(self, namespace: str) -> list[_MemoryRecord]:
        return [r for (ns, _), r in self._records.items() if ns == namespace]

    def _check(self, namespace: str, key: str, expected: int | None) -> _MemoryRecord | None:
        current = self._records.get((namespace, key))
        actual = current.version if current else 0
        if expected is not None and expected != actual:
            raise VersionConflict(f"{namespace}/{key}", expected, actual if current else None)
        return current


@dataclass(frozen=True, slots=True)
class Owner:
    """A registry entry: who holds a path, with which token, since when, from which process."""

    path: str
    session: str
    token: int
    since: datetime
    proc: ProcessId | None
    version: int  # of the record, for compare-and-set

    def data(self) -> dict[str, Any]:
        proc = self.proc.as_dict() if self.proc else {}
        fields = {"path": self.path, "session": self.session, "token": self.token}
        return {**fields, "since": self.since.isoformat(), **proc}

    @classmethod
    def parse(cls, key: str, record: RecordView) -> Owner:
        data = record.data
        try:
            return cls(
                path=str(data["path"]),
                session=str(data["session"]),
                token=int(data["token"]),
                since=datetime.fromisoformat(str(data["since"])),
                proc=ProcessId.from_dict(data),
                version=record.version,
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise StateError(f"{FILE_OWNERS}/{key}: malformed owner entry ({exc!r})") from None


@dataclass(frozen=True, slots=True)
class Wait:
    """An edge of the wait-for graph: ``session`` waits for ``path``, held by ``owner``."""

    session: str
    path: str
    owner: str
    proc: ProcessId | None


class OwnerRegistry:
    """Typed access to the three namespaces; compare-and-set everywhere a race can happen."""

    def __init__(self, records: Records) -> None:
        self.records = records
        self._index: dict[str, tuple[int, dict[str, str]]] = {}  # session → (version, paths)

    # -- owners -----------------------------------------------------------------------------

    async def owner(self, key: str) -> Owner | None:
        record = await self.records.get_record(FILE_OWNERS, key)
        return Owner.parse(key, record) if record is not None else None

    async def claim(self, key: str, owner: Owner, expected_version: int) -> int:
        """Write ``owner`` if the entry is still at ``expected_version``; the new version."""
        record = await self.records.put_record(
            FILE_OWNERS, key, owner.data(), expected_version, durable=False
        )
        return record.version

    async def drop(self, key: str, version: int) -> bool:
        """Delete the entry if it is still the one written at ``version`` (nobody took over)."""
        try:
            return await self.records.delete_record(FILE_OWNERS, key, version, durable=False)
        except VersionConflict:
            return False

    # -- per-session index ------------------------------------------------------------------

    async def index(self, session: str) -> dict[str, str]:
        """Key → path of what ``session`` may hold (a superset; check the owner entries)."""
        record = await self.records.get_record(SESSION_LOCKS, session)
        paths = dict(record.data.get("paths", {})) if record is not None else {}
        self._index[session] = (record.version if record is not None else 0, paths)
        return dict(paths)

    def forget(self, session: str) -> None:
        """Drop what this registry remembers of ``session``'s index (its locks are all
        released): an ended session's entry would stay for as long as the run goes on."""
        self._index.pop(session, None)

    async def index_update(
        self, session: str, add: Mapping[str, str] | None = None, remove: Iterable[str] = ()
    ) -> None:
        """Add and remove keys, writing on top of the last version this registry saw (a
        session's locks are normally taken by one process, so that is usually still current)
        and reading again only when someone else wrote in between."""
        removed = set(remove)
        while True:
            cached = self._index.get(session)
            if cached is None:
                await self.index(session)
                continue
            version, paths = cached
            merged = {k: v for k, v in {**paths, **(add or {})}.items() if k not in removed}
            if merged == paths:
                return
            try:
                if merged:
                    record = await self.records.put_record(
                        SESSION_LOCKS, session, {"paths": merged}, version, durable=False
                    )
                    self._index[session] = (record.version, merged)
                else:
                    await self.records.delete_record(SESSION_LOCKS, session, version, durable=False)
                    self._index[session] = (0, {})
                return
            except VersionConflict:
                del self._index[session]

    # -- wait-for graph ---------------------------------------------------------------------

    async def set_wait(self, session: str, path: str, owner: str) -> None:
        data = {"session": session, "path": path, "owner": owner, **procid.current().as_dict()}
        await self.records.put_record(LOCK_WAITS, session, data, durable=False)

    async def clear_wait(self, session: str) -> None:
        await self.records.delete_record(LOCK_WAITS, session, durable=False)

    async def waits(self) -> dict[str, Wait]:
        """Every recorded wait whose waiting process may still be alive, by session."""
        records = await self.records.list_records(LOCK_WAITS)
        found: list[Wait] = []
        for record in records:
            data = record.data
            if not all(isinstance(data.get(f), str) for f in ("session", "path", "owner")):
                continue  # not a wait this version wrote: it cannot be part of our cycles
            found.append(
                Wait(data["session"], data["path"], data["owner"], ProcessId.from_dict(data))
            )
        procs = [w.proc for w in found]
        me = procid.current()
        if all(p is None or p == me for p in procs):
            return {w.session: w for w in found}  # nothing to look up in /proc
        alive = await anyio.to_thread.run_sync(_alive_flags, procs)
        return {w.session: w for w, ok in zip(found, alive, strict=True) if ok}


def _alive_flags(procs: list[ProcessId | None]) -> list[bool]:
    # Unknown (another host, no identity) counts as alive: a false deadlock is refused loudly,
    # a missed one would hang two sessions.
    return [p is None or procid.is_alive(p) is not False for p in procs]


def find_cycle(start: str, waits: Mapping[str, Wait]) -> list[tuple[str, str, str]] | None:
    """The cycle through ``start`` in the wait-for graph, as (waiter, path, holder) steps."""
    steps: list[tuple[str, str, str]] = []
    seen: set[str] = set()
    current = start
    while current in waits and current not in seen:
        seen.add(current)
        wait = waits[current]
        steps.append((current, wait.path, wait.owner))
        if wait.owner == start:
            return steps
        current = wait.owner
    return None
