"""The keyed-record part of the ``StateStore`` protocol: the records of other layers (worktrees,
CLI runs, locks, radar sightings, ...), each in a namespace, and the calls that write one with
a task, after blocking work, or several at once. ``StateStore`` (``protocol``) is this and
the rest; its rules (versions, events, damage) hold here as they do there."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, TypeVar

from orchestrator.models import KeyedRecord, TaskState
from orchestrator.state.carried import CarriedPut
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion

__all__ = ["RecordStore"]

T = TypeVar("T")
U = TypeVar("U")


class RecordStore(Protocol):
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
    ) -> KeyedRecord:
        """Replace the record's data (``expected_version=0``: only if it does not exist).

        ``durable=False`` is for records about live processes (lock owners, waits): the write
        is still atomic and visible to every process at once, but a machine crash may lose it,
        which is harmless because it also ended every process such a record describes.
        ``ttl`` (seconds): the record expires then (``expires_at``; ``state.expiry``): it reads
        as absent, to a compare-and-set too, and ``purge_expired`` removes it. A write
        without ``ttl`` makes the record last.
        """
        ...

    async def put_made_record(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        expected_version: int | None = None,
        *,
        durable: bool = True,
        ttl: float | None = None,
    ) -> tuple[KeyedRecord, T]:
        """``put_record`` of the data ``make`` returns, with the rest of its answer.

        ``make`` is blocking work (a file written, a process's start read) that the record
        describes: called once, before the write, in the worker-thread call that writes the
        record where the store makes one (the file store: one hop for both), else in a worker
        thread of its own. A ``make`` that raises writes nothing.
        """
        ...

    async def put_made_record_and_task(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        record_version: int | None = None,
    ) -> tuple[KeyedRecord, T, TaskState]:
        """``put_made_record`` (lasting, durable; ``record_version``: its compare-and-set),
        then ``update_task_state`` of ``task_id`` (durable; ``expected_version`` and
        ``fencing_token`` are the task's): one
        worker-thread call on the file store (the record's lock and the task's, in the global
        order of ``state.transactions``), one transaction on PostgreSQL (``make`` in a worker
        thread before it, as ``put_made_record``). Either's version or the task's fence
        refused, or a ``make`` that raises: nothing written (the file store checks the task before
        ``make``). The record is written before the task: a crash between them (file store)
        leaves the record without the task's write, as two calls in that order would."""
        ...

    async def put_made_record_and_task_carrying(
        self,
        namespace: str,
        key: str,
        make: Callable[[], tuple[Mapping[str, Any], T]],
        task_id: str,
        updates: Mapping[str, Any],
        expected_version: int | None = None,
        *,
        fencing_token: int | None = None,
        record_version: int | None = None,
        carried: Sequence[CarriedPut] = (),
    ) -> tuple[KeyedRecord, T, TaskState, list[KeyedRecord | None]]:
        """``put_made_record_and_task``, then each ``carried`` record (``state.carried``),
        in order, each written as ``make(current)`` gives it (None: not written): in the same
        worker-thread call on the file store (every lock taken before anything is written;
        the carried ``make`` run under its record's lock, after the call's own ``make`` and
        checks, before any write: what one raises writes nothing), else one call after
        another (``carried_in_turn.put_and_task_in_turn``). The written carried records, in order
        (None where nothing was). A crash leaves a prefix: the record, then the task, then
        the carried ones, as calls in that order would."""
        ...

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
    ) -> tuple[KeyedRecord, T, U]:
        """``put_made_record``, then ``then`` (blocking) given the rest of ``make``'s answer,
        once the record is written (durable as asked): in the same worker-thread call where the
        store makes one (the file store: still under the record's lock; one hop for all),
        else in a worker thread of its own after the query. A ``then`` that raises leaves the
        record written, and its error is raised: for work the record must be ahead of (a
        session's worktree behind its record)."""
        ...

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
    ) -> tuple[KeyedRecord, T, U, bool]:
        """``put_made_record_then`` for a record that stands for ``then`` while it runs (a
        lock's holder while its work runs): once ``then`` answered, the record is deleted
        again when ``over(answer)`` says its time is over, in the same worker-thread call
        where the store makes one (the file store: still under the record's lock), else in
        a store call of its own after it. The record written, ``make``'s rest, ``then``'s
        answer, and whether the record was deleted: a deletion the store could not make
        (an ``OSError``, the store's ``CouncilError``) leaves the record written and is
        logged, never raised (``then``'s work is done: its answer is not lost). A ``then``
        that raises leaves the record written, as ``put_made_record_then``."""
        ...

    async def delete_record(
        self,
        namespace: str,
        key: str,
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> bool:
        """Remove the record; False when there was none. A version mismatch raises."""
        ...

    async def delete_records(self, items: Sequence[Deletion]) -> list[bool]:
        """Remove several records in one store call (``state.deletions``), each as
        ``delete_record`` would: under its lock (file store: all of them in one worker-thread
        call when none is held elsewhere; PostgreSQL: one transaction). Every expected version
        is checked before any record goes: a mismatch raises ``VersionConflict`` and deletes
        none. For each, in order: whether it was there (False when there was none)."""
        ...

    async def put_and_delete_records(
        self, puts: Sequence[CarriedPut], deletions: Sequence[Deletion] = ()
    ) -> tuple[list[KeyedRecord | None], list[bool]]:
        """Several keyed records written and others deleted in one store call: each put as
        its ``make(current)`` gives it (``state.carried``: None writes nothing; its own
        ``durable`` and ``ttl``), each deletion as ``delete_records`` makes it. One
        worker-thread call on the file store (every lock tried in the global order of
        ``state.transactions``, all let go when one is busy; ``make`` run under its record's
        lock: a compare-and-set that cannot conflict), one transaction on PostgreSQL. Every
        ``make`` is run and every deletion's version checked before anything is written: one
        that raises, or a mismatch (``VersionConflict``), writes and deletes nothing. A record
        named twice is refused (``ValueError``). The deletions go first, then the puts: a crash
        (file store) leaves a prefix of them, as calls in that order would. For each put, the
        record written (None: not written); for each deletion, whether it was there."""
        ...

    async def delete_made_records(
        self, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[list[bool], T]:
        """``delete_records`` of the deletions ``make`` returns, with the rest of its answer.

        ``make`` is blocking work whose outcome decides which records go (a worktree removed:
        its record): called once, first, in the worker-thread call that deletes them where
        the store makes one (the file store: one hop for both), else in a worker thread of
        its own. A ``make`` that raises deletes nothing; one naming none deletes nothing."""
        ...

    async def release_claim_then_delete_made(
        self, release: ReleaseFirst, make: Callable[[], tuple[Sequence[Deletion], T]]
    ) -> tuple[TaskState, list[bool], T]:
        """``release_claim`` as ``release`` says (``claim_rules.ReleaseFirst``), then
        ``delete_made_records(make)``, in that order: in one worker-thread call where the
        store can (the file store: the release under the task's lock, then ``make``, then the
        records under theirs, no lock held while another is taken), else the calls in turn.
        A refused release (``StaleClaim``) raises before ``make`` runs; a crash between
        leaves what the calls in turn would. The task released, what ``delete_made_records``
        gives."""
        ...

    async def delete_record_after(
        self,
        namespace: str,
        key: str,
        first: Callable[[], T],
        expected_version: int | None = None,
        *,
        durable: bool = True,
    ) -> tuple[bool, T]:
        """``delete_record`` after ``first`` (blocking work that must be done before the
        record goes: a process's family swept, say), with ``first``'s answer: called once,
        before the record is looked at, in the worker-thread call that removes it where the
        store makes one (the file store: one hop for both), else in a worker thread of its own.
        A ``first`` that raises removes nothing."""
        ...

    async def list_records(self, namespace: str) -> list[KeyedRecord]: ...
