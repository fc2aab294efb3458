"""Session context: what each running session is doing, so the others (and the user) can see.

One keyed record per session in the state store (namespace ``session-context``, key the
session id), holding a ``SessionContext``: its CLI, task, current file, status, progress,
message, the files it has locked, the files it reported changing, the process that wrote it and
when it last reported. Being in the store, every orchestrator process sees it, on every
workstation of a team when the store is shared (PostgreSQL). It is advisory, a feed for prompts
and dashboards; the source of truth for ownership stays the lock registry.

Contract:

- ``update_context`` merges the given fields into the session's context (creating it) and
  stamps ``updated_at`` and the writing process; ``add_files`` adds paths to its locked and
  changing files. Both are a read-modify-write that compares and sets the record's version and
  reads again when someone wrote in between, so concurrent updates from several tasks or
  processes are never lost. Records are written ``durable=False``: a context describes a live
  process, which a machine crash also ends. ``files_carried`` is ``add_files`` handed to
  another room's store call to write (``state.carried``: the phase's completion carries the
  files a build changed), merged there from the context as that call finds it.
- Paths (``current_file``, ``files_locked``, ``files_changing``) are stored normalized
  (``orchestrator.safety.paths``), so ``find_file_conflicts("./a//b")`` finds a session working
  on ``a/b``.
- ``blocked_on`` only means something while the status is ``blocked``: moving to any other
  status clears it.
- A record that does not parse (written by hand, or by another version) is reported as absent
  with a warning and replaced by the session's next update: context is rebuilt by sessions as
  they go, so it is never worth refusing to work over.
- ``busy_files`` is what a session's prompt is told about: every path the other sessions lock,
  change or work on, by path. A context whose writer is known to be dead (same host, process
  gone) is left out, as its locks went with it. ``reading`` is the same read made in a
  worker-thread call the caller makes anyway (``BusyRead.take``, blocking), where the store
  can read there (``ListsNow``: the file store's lock-free read); its answer is what the
  contexts were at that moment, for a prompt written right after it.
- ``cleanup_stale_contexts(timeout_minutes)`` removes contexts not updated for that long whose
  status is not ``done`` (they describe work nobody is doing any more, typically a session
  whose process died); ``done`` contexts are the record that a task's work finished, counted by
  ``get_task_summary``, and stay until ``remove_context`` (or ``include_done=True``).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any, Protocol, runtime_checkable

import anyio.to_thread
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.errors import VersionConflict
from orchestrator.id_fields import SafeId
from orchestrator.ids import check_id
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.process import procid
from orchestrator.process.procid import ProcessId
from orchestrator.safety.paths import RepoPaths, StrPath
from orchestrator.safety.secret_mask import masked_model
from orchestrator.state.carried import CarriedPut, Carrier
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = [
    "CONTEXTS",
    "BusyFile",
    "BusyRead",
    "ContextManager",
    "ListsNow",
    "SessionContext",
    "WorkStatus",
]

log = logging.getLogger(__name__)

CONTEXTS = "session-context"  # the store namespace: one record per session
_WRITTEN_LIMIT = 4096  # contexts remembered as written (``ContextManager._written``)
_PATHS_IN_LINE = 8  # paths normalized on the event loop (``ContextManager._normalized``)


class WorkStatus(StrEnum):
    WORKING = "working"
    BLOCKED = "blocked"  # cannot go on: see ``message`` and ``blocked_on``
    WAITING = "waiting"  # queued for something expected to come (a lock, the merge queue)
    DONE = "done"


class SessionContext(BaseModel):
    """What one session reports about itself."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    session: SafeId
    cli: str = ""
    task: SafeId | None = None
    current_file: str | None = None
    status: WorkStatus = WorkStatus.WORKING
    progress: int = Field(default=0, ge=0, le=100)
    message: str = ""
    blocked_on: str | None = None
    files_locked: list[str] = Field(default_factory=list)
    files_changing: list[str] = Field(default_factory=list)  # reported, not (yet) locked
    writer: dict[str, Any] | None = None  # the process that wrote it last (``procid``)
    updated_at: datetime = Field(default_factory=utcnow)

    def files(self) -> list[str]:
        """Every path this session is on: its current, locked and changing files, sorted."""
        found = {*self.files_locked, *self.files_changing}
        if self.current_file is not None:
            found.add(self.current_file)
        return sorted(found)

    def touches(self, path: str) -> bool:
        """True when ``path`` (normalized) is one of this session's files."""
        return self.current_file == path or path in self.files_locked or path in self.files_changing


@dataclass(frozen=True, slots=True)
class BusyFile:
    """A path another session is on: who, and for which task."""

    path: str
    session: str
    task: str | None


@runtime_checkable
class ListsNow(Protocol):
    """A store that can list a namespace's records in a worker-thread call of the caller's
    (blocking; None when it cannot there): the file store (``FileStateStore``)."""

    def list_records_now(self, namespace: str) -> Sequence[KeyedRecord] | None: ...


@dataclass
class BusyRead:
    """``busy_files`` read in a worker-thread call the caller makes anyway (``take``,
    blocking, once; it never raises): ``found`` is the answer, None when it was not taken or
    could not be made there (the caller then reads with ``busy_files``)."""

    read: Callable[[], list[BusyFile] | None]
    found: list[BusyFile] | None = field(default=None, init=False)

    def take(self) -> None:
        try:
            self.found = self.read()
        except Exception as exc:  # read again by the prompt's own call: never this call's end
            log.warning("the session contexts could not be read: %s", exc)
            self.found = None


UPDATABLE = frozenset(SessionContext.model_fields) - {"session", "updated_at", "writer"}
_PATH_LISTS = ("files_locked", "files_changing")


class ContextManager:
    """Reads and writes the session contexts of one project (see module docstring)."""

    def __init__(self, store: StateStore, project_dir: StrPath) -> None:
        self.store = store
        self._paths = RepoPaths(project_dir)
        # Session -> (version, context) this manager last wrote: the next change of it is a
        # compare-and-set against that version with no read first; any conflict (someone else
        # wrote it, or it went) reads it again, as without.
        self._written: dict[str, tuple[int, SessionContext]] = {}

    async def update_context(self, session: str, **fields: Any) -> SessionContext:
        """Merge ``fields`` into ``session``'s context; unknown field names raise TypeError,
        invalid values ValueError (pydantic's ValidationError)."""
        check_id(session, "session id")
        given = await self._normalized(_checked(fields))

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            return {**current, **given}

        return await self._change(session, merge)

    async def add_files(
        self,
        session: str,
        *,
        locked: Iterable[StrPath] = (),
        changing: Iterable[StrPath] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> SessionContext:
        """Add paths to ``session``'s locked and changing files (creating its context);
        ``fields`` merged in first, in the same write, as ``update_context`` merges them."""
        check_id(session, "session id")
        first = await self._normalized(_checked(fields or {}))
        lists = {"files_locked": list(locked), "files_changing": list(changing)}
        given = await self._normalized(lists)

        def merge(current: dict[str, Any]) -> dict[str, Any]:
            merged = {**current, **first}
            for name in _PATH_LISTS:
                merged[name] = sorted({*merged.get(name, []), *given[name]})
            return merged

        return await self._change(session, merge)

    async def files_carried(
        self,
        session: str,
        *,
        locked: Iterable[StrPath] = (),
        changing: Iterable[StrPath] = (),
        fields: Mapping[str, Any] | None = None,
    ) -> Carrier:
        """``add_files`` as a write another room's store call carries (``state.carried``): the
        paths normalized now; the merge made from the context as that call finds it (under
        its lock on the file store: a compare-and-set that cannot conflict; elsewhere one of
        its own, tried again on a conflict, as ``add_files``)."""
        check_id(session, "session id")
        first = await self._normalized(_checked(fields or {}))
        lists = {"files_locked": list(locked), "files_changing": list(changing)}
        given = await self._normalized(lists)
        self._written.pop(session, None)  # known again only from what the call writes
        made: list[SessionContext] = []

        def make(record: KeyedRecord | None) -> dict[str, Any]:
            current = _parse(record)
            merged: dict[str, Any] = {"session": session}
            if current is not None:
                merged = current.model_dump()
            merged.update(first)
            for name in _PATH_LISTS:
                merged[name] = sorted({*merged.get(name, []), *given[name]})
            context = _stamped(merged)
            made.append(context)
            return context.model_dump(mode="json")

        def done(record: KeyedRecord | None) -> None:
            if record is not None and made:
                self._remember(session, record.version, made[-1])

        return Carrier(CarriedPut(CONTEXTS, session, make, durable=False), done)

    async def mark_blocked(
        self, session: str, reason: str, blocked_on: str | None = None
    ) -> SessionContext:
        """Report ``session`` blocked, why, and on what (a path, a session, a task...)."""
        return await self.update_context(
            session, status=WorkStatus.BLOCKED, message=reason, blocked_on=blocked_on
        )

    async def get_context(self, session: str) -> SessionContext | None:
        check_id(session, "session id")
        return _parse(await self.store.get_record(CONTEXTS, session))

    async def all_contexts(self) -> list[SessionContext]:
        """Every readable context, by session id."""
        found = (_parse(r) for r in await self.store.list_records(CONTEXTS))
        return sorted((c for c in found if c is not None), key=lambda c: c.session)

    async def find_file_conflicts(
        self, path: StrPath, *, exclude: str | None = None
    ) -> list[SessionContext]:
        """Sessions (other than ``exclude``) whose current file or locked files include
        ``path``; a path outside the repository raises ``PathEscapeError``."""
        normalized = await anyio.to_thread.run_sync(self._paths.normalize, path)
        return [
            c for c in await self.all_contexts() if c.session != exclude and c.touches(normalized)
        ]

    async def busy_files(self, exclude: Collection[str] = ()) -> list[BusyFile]:
        """Every path a session not in ``exclude`` is on, by path then session; sessions of a
        process known to be dead are left out (module doc)."""
        contexts = [c for c in await self.all_contexts() if c.session not in exclude]
        alive = _alive_here(contexts)
        if alive is None:
            alive = await anyio.to_thread.run_sync(_alive_flags, contexts)
        return _busy(contexts, alive)

    def reading(self, exclude: Collection[str] = ()) -> BusyRead | None:
        """``busy_files(exclude)`` as a ``BusyRead`` to take in a worker-thread call the
        caller makes anyway; None when the store cannot read there (``ListsNow``)."""
        store = self.store
        if not isinstance(store, ListsNow):
            return None
        left_out = frozenset(exclude)

        def read() -> list[BusyFile] | None:
            records = store.list_records_now(CONTEXTS)
            if records is None:
                return None
            found = (_parse(r) for r in records)
            contexts = sorted((c for c in found if c is not None), key=lambda c: c.session)
            contexts = [c for c in contexts if c.session not in left_out]
            alive = _alive_here(contexts)
            return _busy(contexts, alive if alive is not None else _alive_flags(contexts))

        return BusyRead(read)

    async def get_task_summary(self, task_id: str) -> dict[WorkStatus, int]:
        """How many sessions of ``task_id`` are in each status (every status present)."""
        check_id(task_id, "task id")
        counts = dict.fromkeys(WorkStatus, 0)
        for context in await self.all_contexts():
            if context.task == task_id:
                counts[context.status] += 1
        return counts

    async def cleanup_stale_contexts(
        self, timeout_minutes: float, *, include_done: bool = False
    ) -> int:
        """Remove contexts older than ``timeout_minutes`` (not ``done`` ones unless asked);
        how many were removed."""
        if timeout_minutes < 0:
            raise ValueError(f"timeout_minutes must be >= 0, got {timeout_minutes}")
        cutoff = utcnow() - timedelta(minutes=timeout_minutes)
        removed = 0
        for record in await self.store.list_records(CONTEXTS):
            context = _parse(record)
            if context is None or context.updated_at >= cutoff:
                continue
            if context.status == WorkStatus.DONE and not include_done:
                continue
            # An update may land between our listing and the removal: only remove what we judged.
            try:
                if await self.store.delete_record(CONTEXTS, record.key, record.version):
                    removed += 1
            except VersionConflict:
                continue
        return removed

    def removal(self, session: str) -> Deletion:
        """``remove_context(session)`` as a deletion for a store call of the caller's making
        (``delete_records``, with other records of the session's end): forgotten here now."""
        check_id(session, "session id")
        self._written.pop(session, None)
        return Deletion(CONTEXTS, session)

    async def remove_context(self, session: str, *, task: str | None = None) -> bool:
        """Delete ``session``'s context (given ``task``: only while it is that task's, as read
        just before, so a new context written meanwhile stays); False when none went."""
        check_id(session, "session id")
        written = self._written.pop(session, None)
        if task is None:
            return await self.store.delete_record(CONTEXTS, session, durable=False)
        if written is not None and written[1].task == task:
            with contextlib.suppress(VersionConflict):  # written since: look, as below
                return await self.store.delete_record(CONTEXTS, session, written[0], durable=False)
        record = await self.store.get_record(CONTEXTS, session)
        context = _parse(record)
        if record is None or context is None or context.task != task:
            return False
        try:
            return await self.store.delete_record(CONTEXTS, session, record.version, durable=False)
        except VersionConflict:
            return False

    # -- internals --------------------------------------------------------------------------

    async def _change(
        self, session: str, merge: Callable[[dict[str, Any]], dict[str, Any]]
    ) -> SessionContext:
        """Read, merge, compare-and-set; again from the read when someone wrote first. The
        read is skipped when this manager wrote the context last (``_written``), and for a
        session it never wrote: that first write expects none (version 0), so a context that
        is there after all (another process's, an earlier run's) is a conflict, which reads
        it and merges again, as a read first would have."""
        known: tuple[int, SessionContext | None] | None = self._written.pop(session, None)
        if known is None:
            known = (0, None)
        current: SessionContext | None
        while True:
            if known is not None:
                version, current = known
                known = None
            else:
                record = await self.store.get_record(CONTEXTS, session)
                current = _parse(record)
                version = record.version if record is not None else 0
            base = current.model_dump() if current is not None else {"session": session}
            context = _stamped(merge(base))
            try:
                stored = await self.store.put_record(
                    CONTEXTS, session, context.model_dump(mode="json"), version, durable=False
                )
            except VersionConflict:
                continue
            self._remember(session, stored.version, context)
            return context

    def _remember(self, session: str, version: int, context: SessionContext) -> None:
        """``context`` written at ``version`` by this manager (``_written``)."""
        if len(self._written) >= _WRITTEN_LIMIT:
            self._written.clear()  # sessions whose contexts were never removed: forgotten
        self._written[session] = (version, context)

    async def _normalized(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        """``fields`` with their paths normalized. Normalizing looks at the disk (an ``lstat``
        of each component, as ``RepoPaths`` says): on the event loop for a few paths (a
        build's usual report), like any other stat; in a worker thread for more."""
        paths = sum(len(fields.get(n) or ()) for n in _PATH_LISTS)
        paths += fields.get("current_file") is not None
        if paths <= _PATHS_IN_LINE:
            return self._normalized_fields(fields)
        return await anyio.to_thread.run_sync(self._normalized_fields, fields)

    def _normalized_fields(self, fields: Mapping[str, Any]) -> dict[str, Any]:
        given = dict(fields)
        if given.get("current_file") is not None:
            given["current_file"] = self._paths.normalize(given["current_file"])
        for name in _PATH_LISTS:
            if name in given:
                given[name] = sorted({self._paths.normalize(p) for p in given[name] or []})
        return given


def _stamped(merged: dict[str, Any]) -> SessionContext:
    """A merged context as written: ``blocked_on`` only while blocked, its writer and time
    stamped, secrets masked; invalid values raise (pydantic's ValidationError)."""
    if merged.get("status", WorkStatus.WORKING) != WorkStatus.BLOCKED:
        merged["blocked_on"] = None
    merged["writer"] = procid.current().as_dict()
    merged["updated_at"] = utcnow()
    return masked_model(SessionContext.model_validate(merged))


def _checked(fields: Mapping[str, Any]) -> Mapping[str, Any]:
    """``fields``, when each names a field a caller may set; TypeError naming the others."""
    unknown = set(fields) - UPDATABLE
    if unknown:
        raise TypeError(f"unknown context fields {sorted(unknown)}; known: {sorted(UPDATABLE)}")
    return fields


def _parse(record: KeyedRecord | None) -> SessionContext | None:
    if record is None:
        return None
    try:
        return SessionContext.model_validate(record.data)
    except ValidationError as exc:
        log.warning(
            "ignoring unreadable session context %s/%s: %s",
            CONTEXTS,
            record.key,
            exc.errors()[0]["msg"],
        )
        return None


def _busy(contexts: list[SessionContext], alive: list[bool]) -> list[BusyFile]:
    """The paths of the ``contexts`` whose flag in ``alive`` is set, by path then session."""
    busy = [
        BusyFile(path, c.session, c.task)
        for c, ok in zip(contexts, alive, strict=True)
        if ok
        for path in c.files()
    ]
    return sorted(busy, key=lambda b: (b.path, b.session))


def _alive_here(contexts: list[SessionContext]) -> list[bool] | None:
    """``_alive_flags`` without looking at the system, when every context was written by this
    process or by no one known (the usual case: the sessions of one run); None otherwise."""
    me = procid.current().as_dict()
    if all(not context.writer or context.writer == me for context in contexts):
        return [True] * len(contexts)
    return None


def _alive_flags(contexts: list[SessionContext]) -> list[bool]:
    # Unknown (another host, no identity) counts as alive: telling a CLI to leave a file alone
    # for nothing costs little; letting it edit one another session changes costs a conflict.
    flags = []
    for context in contexts:
        writer = ProcessId.from_dict(context.writer) if context.writer else None
        flags.append(writer is None or procid.is_alive(writer) is not False)
    return flags
