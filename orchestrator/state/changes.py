"""Watching records change, across processes: what names a record, what a change says, and
the stream of changes ``StateStore.watch`` returns.

- ``RecordRef``: one record of any kind: ``RecordRef.task(id)``, ``RecordRef.session(id)``,
  ``RecordRef.record(namespace, key)``. Its ``path`` (``tasks/t1``, ``sessions/s1``,
  ``records/worktrees/t1``) is what a watch pattern is matched against.
- ``RecordChange``: a record was written: its kind, key and new version. A change whose
  ``version`` is None (``RESYNC``) says changes may have gone unheard (a lost connection to the
  database): read again what you care about. It matches every pattern.
- ``ChangeStream``: the changes whose path matches a glob pattern (``fnmatch``: ``*`` also
  crosses ``/``; ``tasks/*``, ``records/handoffs/*``, ``*``), for ``async for``. Enter it
  (``async with``) before reading what you watch: every write after that is heard. Leaving
  it (or ``aclose``) stops it; nothing keeps running. Waiting for the next change may be
  cancelled (a timeout) without losing one.

A backend supplies a ``ChangeSource`` (the file backend tails its event log, PostgreSQL hears
LISTEN/NOTIFY); the stream only filters and buffers.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from types import TracebackType
from typing import Generic, Protocol, Self, TypeVar

from pydantic import BaseModel

from orchestrator.models import KeyedRecord, SessionRecord, TaskState
from orchestrator.state.history_kinds import keyed_kind

__all__ = [
    "RECORDS",
    "RESYNC",
    "SESSIONS",
    "TASKS",
    "ChangeSource",
    "ChangeStream",
    "RecordChange",
    "RecordRef",
    "change_of",
    "matching",
]

R = TypeVar("R", bound=BaseModel)

TASKS, SESSIONS, RECORDS = "tasks", "sessions", "records"
_UNWATCHED = frozenset({"counters"})  # the store's own bookkeeping, never announced


@dataclass(frozen=True)
class RecordRef(Generic[R]):
    """One record: ``kind`` is ``tasks``, ``sessions`` or ``records/<namespace>``."""

    kind: str
    key: str
    model: type[R]

    @staticmethod
    def task(task_id: str) -> RecordRef[TaskState]:
        return RecordRef(TASKS, task_id, TaskState)

    @staticmethod
    def session(session_id: str) -> RecordRef[SessionRecord]:
        return RecordRef(SESSIONS, session_id, SessionRecord)

    @staticmethod
    def record(namespace: str, key: str) -> RecordRef[KeyedRecord]:
        return RecordRef(keyed_kind(namespace), key, KeyedRecord)

    @property
    def namespace(self) -> str | None:
        """The namespace of a keyed record; None for a task or a session."""
        prefix = f"{RECORDS}/"
        return self.kind[len(prefix) :] if self.kind.startswith(prefix) else None

    @property
    def path(self) -> str:
        return f"{self.kind}/{self.key}"


@dataclass(frozen=True)
class RecordChange:
    """A record written (module doc); ``version`` None: anything may have changed."""

    kind: str
    key: str
    version: int | None

    @property
    def path(self) -> str:
        return f"{self.kind}/{self.key}"

    @property
    def resync(self) -> bool:
        return self.version is None

    def matches(self, pattern: str) -> bool:
        return self.resync or fnmatchcase(self.path, pattern)


RESYNC = RecordChange("*", "*", None)


def change_of(kind: object, key: object, version: object) -> RecordChange | None:
    """The change a ``state.updated`` or ``state.recovered`` event (or notice) tells of, its
    kind as a ``RecordRef`` names it (the file backend's events name a keyed record's kind by
    its namespace alone, PostgreSQL's as ``records/<namespace>``); None when it names no
    watched record."""
    if not isinstance(kind, str) or not isinstance(key, str) or kind in _UNWATCHED:
        return None
    if kind not in (TASKS, SESSIONS) and not kind.startswith(f"{RECORDS}/"):
        kind = keyed_kind(kind)
    return RecordChange(kind, key, version if isinstance(version, int) else None)


class ChangeSource(Protocol):
    """Where a backend's changes come from, for one stream."""

    async def start(self) -> None:
        """Return once every write from now on will be heard."""
        ...

    async def wait(self) -> list[RecordChange]:
        """The changes heard since the last call, waiting until there is one. Cancelling the
        wait loses nothing: what was heard is returned by the next call."""
        ...

    async def aclose(self) -> None: ...


class ChangeStream:
    """The changes of the records whose path matches ``pattern`` (module doc)."""

    def __init__(self, source: ChangeSource, pattern: str = "*") -> None:
        self.pattern = pattern
        self._source = source
        self._buffer: deque[RecordChange] = deque()
        self._started = False
        self._closed = False

    async def start(self) -> None:
        """Hear every write from now on (``async with`` does it)."""
        if not self._started:
            await self._source.start()
            self._started = True

    async def next_batch(self) -> list[RecordChange]:
        """Every matching change heard so far, waiting until there is at least one."""
        await self.start()
        while not self._buffer:
            if self._closed:
                raise StopAsyncIteration
            heard = await self._source.wait()
            self._buffer.extend(c for c in heard if c.matches(self.pattern))
        batch = list(self._buffer)
        self._buffer.clear()
        return batch

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            self._buffer.clear()
            await self._source.aclose()

    def __aiter__(self) -> Self:
        return self

    async def __anext__(self) -> RecordChange:
        if not self._buffer:
            self._buffer.extend(await self.next_batch())
        return self._buffer.popleft()

    async def __aenter__(self) -> Self:
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


def matching(changes: Sequence[RecordChange], ref: RecordRef[R]) -> bool:
    """Whether ``changes`` may concern ``ref`` (a resync may concern anything)."""
    return any(c.resync or (c.kind, c.key) == (ref.kind, ref.key) for c in changes)
