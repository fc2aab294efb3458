"""What happens when two writers update the same keyed record: conflict strategies, a
read-modify-write that retries, and conflicts kept for a person to resolve.

Built on the ``StateStore`` protocol alone (``get_record``, ``put_record`` with
``expected_version``), so every backend offers the same behaviour and the one contract suite
proves it on each. A writer says which version its change was ``based_on``; when the record
moved on meanwhile, its ``ConflictStrategy`` decides:

- ``first_write_wins``: the compare-and-set refuses the late write (``VersionConflict``);
  the default, and what every orchestrator record uses;
- ``last_write_wins``: the late write replaces what is there;
- ``merge``: both changes are combined three-way against what the writer read
  (``three_way_merge``: mappings recursively, lists by ``ListRule``); a field both changed to
  different values is a ``MergeConflict`` naming it, nothing written;
- ``manual``: nothing is written to the record; the late write is kept as a pending conflict
  (namespace ``conflicts``: the record, the base, both sides and their versions), listed by
  ``list_conflicts`` (``council state conflicts``) and settled by ``resolve_conflict``
  (``council state resolve``).

``detect_conflicts`` names the fields two changes fight over without writing anything, and
``atomic_update`` applies a function to the current data and writes it back, reading again
and retrying (with a growing, jittered pause) whenever another writer got there first.
"""

from __future__ import annotations

import copy
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, Literal

import anyio
from pydantic_core import to_jsonable_python

from orchestrator.errors import StateError, VersionConflict
from orchestrator.models import KeyedRecord, TaskState
from orchestrator.state.protocol import StateStore

__all__ = [
    "CONFLICTS",
    "ConflictStrategy",
    "ListRule",
    "MergeConflict",
    "PendingConflict",
    "atomic_update",
    "detect_conflicts",
    "list_conflicts",
    "resolve_conflict",
    "three_way_merge",
    "update_task_with_strategy",
    "write_with_strategy",
]

CONFLICTS = "conflicts"  # the namespace pending conflicts are kept in
RECORD, TASK = "record", "task"  # what a pending conflict is about
ListRule = Literal["union", "ours", "theirs"]
_MISSING: Any = object()  # a key absent from one side (distinct from a None value)
_PAUSE_START, _PAUSE_CAP = 0.005, 0.5  # seconds between atomic_update's tries


class ConflictStrategy(StrEnum):
    FIRST_WRITE_WINS = "first_write_wins"
    LAST_WRITE_WINS = "last_write_wins"
    MERGE = "merge"
    MANUAL = "manual"


class MergeConflict(StateError):
    """Both changes set the same field(s) to different values; nothing was written."""

    def __init__(self, record: str, paths: list[str]) -> None:
        self.record, self.paths = record, paths
        super().__init__(f"{record}: both changes set {', '.join(paths)} differently")


@dataclass(frozen=True)
class PendingConflict:
    """A write ``manual`` kept aside: ``ours`` (the late write) against ``theirs`` (what the
    record held at ``theirs_version``), both from ``base`` (what the writer had read)."""

    conflict_id: str
    namespace: str
    key: str
    base: dict[str, Any]
    ours: dict[str, Any]
    theirs: dict[str, Any]
    base_version: int
    theirs_version: int
    fields: list[str]  # what the two changes fight over (``detect_conflicts``)
    kind: str = RECORD  # RECORD: a keyed record of ``namespace``; TASK: task ``key``

    @property
    def record(self) -> str:
        """What the conflict is about, as a person names it."""
        return f"task {self.key}" if self.kind == TASK else f"{self.namespace}/{self.key}"

    @classmethod
    def of(cls, record: KeyedRecord) -> PendingConflict:
        data = record.data
        return cls(
            conflict_id=record.key,
            namespace=str(data["namespace"]),
            key=str(data["key"]),
            base=dict(data["base"]),
            ours=dict(data["ours"]),
            theirs=dict(data["theirs"]),
            base_version=int(data["base_version"]),
            theirs_version=int(data["theirs_version"]),
            fields=list(data["fields"]),
            kind=str(data.get("kind", RECORD)),
        )


def detect_conflicts(
    base: Mapping[str, Any], ours: Mapping[str, Any], theirs: Mapping[str, Any]
) -> list[str]:
    """The fields (dotted paths into nested mappings) that ``ours`` and ``theirs`` both
    changed from ``base``, to different values; sorted."""
    found: list[str] = []
    _walk(base, ours, theirs, "", found, None)
    return sorted(found)


def three_way_merge(
    base: Mapping[str, Any],
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    lists: ListRule = "union",
    *,
    record: str = "record",
) -> dict[str, Any]:
    """``theirs`` with ``ours``'s changes from ``base`` added: mappings merge key by key at
    every depth; a list both sides changed follows ``lists`` (``union``: theirs, then what
    ours added that theirs lacks, in order; ``ours``/``theirs``: that side's list); a field
    both set to different values is a ``MergeConflict``."""
    found: list[str] = []
    merged = _walk(base, ours, theirs, "", found, lists)
    if found:
        raise MergeConflict(record, sorted(found))
    return dict(merged)


def _walk(
    base: Any, ours: Any, theirs: Any, path: str, found: list[str], lists: ListRule | None
) -> Any:
    """The merged value at ``path``; each field both changed differently goes to ``found``."""
    if _same(ours, theirs) or _same(ours, base):
        return theirs
    if _same(theirs, base):
        return ours
    if all(isinstance(v, Mapping) or v is _MISSING for v in (base, ours, theirs)) and not (
        ours is _MISSING or theirs is _MISSING
    ):
        b = base if isinstance(base, Mapping) else {}
        merged = {}
        for name in sorted({*b, *ours, *theirs}):
            value = _walk(
                b.get(name, _MISSING),
                ours.get(name, _MISSING),
                theirs.get(name, _MISSING),
                f"{path}.{name}" if path else str(name),
                found,
                lists,
            )
            if value is not _MISSING:
                merged[name] = value
        return merged
    if lists is not None and isinstance(ours, list) and isinstance(theirs, list):
        if lists == "ours":
            return ours
        if lists == "theirs":
            return theirs
        return theirs + [item for item in ours if item not in theirs]
    found.append(path or "(the whole record)")
    return theirs


def _same(a: Any, b: Any) -> bool:
    return a is b or (a is not _MISSING and b is not _MISSING and a == b)


async def write_with_strategy(
    store: StateStore,
    namespace: str,
    key: str,
    data: Mapping[str, Any],
    *,
    based_on: KeyedRecord | None,
    strategy: ConflictStrategy = ConflictStrategy.FIRST_WRITE_WINS,
    lists: ListRule = "union",
) -> KeyedRecord | PendingConflict:
    """Write ``data`` as the record's new data, ``based_on`` the version the writer read
    (None: it read that there was none); the module doc says what each strategy does when
    the record moved on meanwhile."""
    if strategy == ConflictStrategy.LAST_WRITE_WINS:
        return await store.put_record(namespace, key, data)
    base = based_on.data if based_on is not None else {}
    expected = based_on.version if based_on is not None else 0
    ours = dict(data)
    while True:
        try:
            return await store.put_record(namespace, key, ours, expected_version=expected)
        except VersionConflict:
            if strategy == ConflictStrategy.FIRST_WRITE_WINS:
                raise
        current = await store.get_record(namespace, key)
        theirs = current.data if current is not None else {}
        if strategy == ConflictStrategy.MANUAL:
            version = current.version if current is not None else 0
            return await _keep_aside(store, namespace, key, base, ours, theirs, version, expected)
        ours = three_way_merge(base, ours, theirs, lists, record=f"{namespace}/{key}")
        base, expected = theirs, current.version if current is not None else 0


async def update_task_with_strategy(
    store: StateStore,
    task_id: str,
    updates: Mapping[str, Any],
    *,
    based_on: TaskState,
    strategy: ConflictStrategy = ConflictStrategy.FIRST_WRITE_WINS,
    lists: ListRule = "union",
) -> TaskState | PendingConflict:
    """``update_task_state`` with a strategy for a task that moved on since the writer read it
    (``based_on``), as ``write_with_strategy`` does for keyed records. Only the fields the
    update sets take part: another writer's change to other fields is never a conflict. A
    ``manual`` conflict is kept aside as one about the task, resolved by ``resolve_conflict``
    into the task record."""
    if strategy == ConflictStrategy.LAST_WRITE_WINS:
        return await store.update_task_state(task_id, updates)
    ours = dict(to_jsonable_python(dict(updates)))  # compared as stored: enums, times as JSON
    base = _task_fields(based_on, ours)
    expected = based_on.version
    while True:
        try:
            return await store.update_task_state(task_id, ours, expected_version=expected)
        except VersionConflict:
            if strategy == ConflictStrategy.FIRST_WRITE_WINS:
                raise
        current = await store.get_task_state(task_id)
        if current is None:
            raise StateError(f"task {task_id!r} was removed while it was being updated")
        theirs = _task_fields(current, ours)
        if strategy == ConflictStrategy.MANUAL:
            return await _keep_aside(
                store, "tasks", task_id, base, ours, theirs, current.version, expected, TASK
            )
        ours = three_way_merge(base, ours, theirs, lists, record=f"task {task_id}")
        base, expected = theirs, current.version


def _task_fields(task: TaskState, fields: Mapping[str, Any]) -> dict[str, Any]:
    """``task``'s values of ``fields`` as JSON-shaped data (what an update of them compares)."""
    dumped = task.model_dump(mode="json")
    return {name: dumped[name] for name in fields if name in dumped}


async def _keep_aside(
    store: StateStore,
    namespace: str,
    key: str,
    base: Mapping[str, Any],
    ours: Mapping[str, Any],
    theirs: Mapping[str, Any],
    theirs_version: int,
    base_version: int,
    kind: str = RECORD,
) -> PendingConflict:
    fields = {
        "kind": kind,
        "namespace": namespace,
        "key": key,
        "base": dict(base),
        "ours": dict(ours),
        "theirs": dict(theirs),
        "base_version": base_version,
        "theirs_version": theirs_version,
        "fields": detect_conflicts(base, ours, theirs),
    }
    # Unique without a counter record: the record's key, then a random suffix (ids are
    # at most 64 characters of [a-z0-9._-]).
    conflict_id = f"{namespace}.{key}"[:51] + "." + secrets.token_hex(6)
    return PendingConflict.of(await store.put_record(CONFLICTS, conflict_id, fields, 0))


async def list_conflicts(store: StateStore) -> list[PendingConflict]:
    """Every pending conflict, oldest first."""
    records = await store.list_records(CONFLICTS)
    # A conflict record is written once, so its updated_at is when it was kept aside.
    return [PendingConflict.of(r) for r in sorted(records, key=lambda r: (r.updated_at, r.key))]


async def resolve_conflict(
    store: StateStore,
    conflict_id: str,
    take: Literal["ours", "theirs", "merge"] | Mapping[str, Any],
    lists: ListRule = "union",
) -> KeyedRecord | TaskState:
    """Settle a pending conflict: write ``ours``, keep ``theirs``, ``merge`` them (a
    ``MergeConflict`` when they fight over a field), or write the data given; the record must
    still be at the version the conflict saw it at (else ``VersionConflict``: look again).
    The conflict is removed once settled."""
    record = await store.get_record(CONFLICTS, conflict_id)
    if record is None:
        raise StateError(f"no pending conflict {conflict_id!r} (council state conflicts)")
    pending = PendingConflict.of(record)
    where = pending.record
    if take == "ours":
        data: Mapping[str, Any] = pending.ours
    elif take == "theirs":
        data = pending.theirs
    elif take == "merge":
        data = three_way_merge(pending.base, pending.ours, pending.theirs, lists, record=where)
    else:
        data = take
    settled: KeyedRecord | TaskState
    if pending.kind == TASK:
        settled = await store.update_task_state(
            pending.key, data, expected_version=pending.theirs_version
        )
    else:
        settled = await store.put_record(
            pending.namespace, pending.key, data, expected_version=pending.theirs_version
        )
    await store.delete_record(CONFLICTS, conflict_id, expected_version=record.version)
    return settled


async def atomic_update(
    store: StateStore,
    namespace: str,
    key: str,
    change: Callable[[dict[str, Any]], Mapping[str, Any]],
    *,
    attempts: int = 20,
) -> KeyedRecord:
    """Apply ``change`` to a copy of the record's data (``{}`` when there is none) and write
    the result, only if nobody wrote in between; otherwise read again and apply it again, up
    to ``attempts`` times (then the last ``VersionConflict``). ``change`` may run more than
    once, so it must not do anything but compute the new data."""
    pause = _PAUSE_START
    for attempt in range(1, max(1, attempts) + 1):
        current = await store.get_record(namespace, key)
        data = copy.deepcopy(current.data) if current is not None else {}
        expected = current.version if current is not None else 0
        try:
            return await store.put_record(namespace, key, change(data), expected_version=expected)
        except VersionConflict:
            if attempt >= attempts:
                raise
        # Jittered, so writers that collided do not collide again in step.
        await anyio.sleep(pause * (0.5 + secrets.randbelow(1001) / 1000))
        pause = min(_PAUSE_CAP, pause * 2)
    raise AssertionError("unreachable")  # the loop returns or raises
