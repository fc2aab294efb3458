"""Carried records (``state.carried``) written one store call after another, for a store
that has no one call for them (PostgreSQL), and for a caller with no call to carry them in;
a claim's release made first (``claim_rules.ReleaseFirst``) the same way."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

import anyio.to_thread

from orchestrator.errors import VersionConflict
from orchestrator.models import KeyedRecord, TaskState
from orchestrator.state.carried import CarriedPut, checked_carried
from orchestrator.state.claim_rules import ReleaseFirst
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["carried_in_turn", "put_and_task_in_turn", "release_then_delete_in_turn"]

T = TypeVar("T")


async def carried_in_turn(
    store: StateStore, carried: Sequence[CarriedPut]
) -> list[KeyedRecord | None]:
    """Each carried record written by a compare-and-set of its own, in order: read, made,
    put expecting the version read; again from a new read when someone wrote first. For each,
    the record written (None: ``make`` wrote nothing)."""
    written: list[KeyedRecord | None] = []
    for put in carried:
        while True:
            current = await store.get_record(put.namespace, put.key)
            data = await anyio.to_thread.run_sync(put.make, current)
            if data is None:
                written.append(None)
                break
            version = current.version if current is not None else 0
            try:
                record = await store.put_record(
                    put.namespace, put.key, data, version, durable=put.durable, ttl=put.ttl
                )
            except VersionConflict:
                continue
            written.append(record)
            break
    return written


async def put_and_task_in_turn(
    store: StateStore,
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
    """``put_made_record_and_task_carrying`` as the store's calls in turn, for a store that
    has no one call for it (PostgreSQL): ``put_made_record_and_task``, then each carried
    record (``carried_in_turn``): what a crash leaves is what those calls leave."""
    checked = checked_carried(carried, (namespace, key))
    record, rest, state = await store.put_made_record_and_task(
        namespace,
        key,
        make,
        task_id,
        updates,
        expected_version,
        fencing_token=fencing_token,
        record_version=record_version,
    )
    return record, rest, state, await carried_in_turn(store, checked)


async def release_then_delete_in_turn(
    store: StateStore,
    release: ReleaseFirst,
    make: Callable[[], tuple[Sequence[Deletion], T]],
) -> tuple[TaskState, list[bool], T]:
    """``release_claim_then_delete_made`` as the store's calls in turn, for a store that has
    no one call for it (PostgreSQL): ``release_claim``, then ``delete_made_records``: what a
    crash leaves is what those calls leave; a refused release runs nothing else."""
    state = await store.release_claim(
        release.task_id, release.token, release.status, release.updates
    )
    release.told(state)
    release.then()
    found, rest = await store.delete_made_records(make)
    return state, found, rest
