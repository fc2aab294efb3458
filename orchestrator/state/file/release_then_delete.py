"""A claim's release, then records deleted after blocking work, in one worker-thread call
(``release_claim_then_delete_made``; ``claim_rules.ReleaseFirst``), in the file backend.

The task's lock is tried and the release written under it, as ``release_claim`` writes it (a
token that is not the live claim's raises ``StaleClaim`` and nothing else runs); the lock is
let go, ``then`` runs, then ``make`` (the blocking work that decides which records go), then
the deletion's first try under those records' locks (``locked_all``), no lock held while
another is taken. A busy task lock is waited for before anything is done; a busy record lock,
once the release is written, is left to ``locked_all_call``'s own tries (``make`` is not run
again). A crash leaves a prefix of the release, ``make``'s work and the deletions: what the
calls in turn leave.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import TypeVar

import anyio.to_thread

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.filelock import LockWait
from orchestrator.models import TaskState, utcnow
from orchestrator.state.claim_rules import (
    ReleaseFirst,
    check_fence,
    check_task_id,
    existing_task,
    release,
)
from orchestrator.state.deletions import Deletion, checked
from orchestrator.state.file.core import HELD, UNSETTLED, Busy, FileCore, load_or_recover
from orchestrator.state.file.keyed import delete_locked
from orchestrator.state.file.locked_all import BusyAt, Places, locked_all_call, try_locked_all

__all__ = ["release_then_delete"]

T = TypeVar("T")


async def release_then_delete(
    core: FileCore, first: ReleaseFirst, make: Callable[[], tuple[Sequence[Deletion], T]]
) -> tuple[TaskState, list[bool], T]:
    task_id, tasks = first.task_id, core.tasks
    check_task_id(task_id)
    change = release(first.status, first.updates)  # a bad status refused before any lock
    await core.settle_first()
    made: list[tuple[list[Deletion], T]] = []  # once: a busy record lock tries again

    def targets() -> Places:
        if not made:
            items, rest = make()
            made.append((checked(items), rest))
        return [(core.namespace(d.namespace), d.key) for d in made[0][0]]

    def run(events: list[Event], locked: Collection[int]) -> list[bool | None]:
        """As ``delete_made_records``: every version checked before any record goes."""
        return delete_locked(core, made[0][0], events, locked)

    def deleted(found: list[bool | None]) -> list[int]:
        return [at for at, done in enumerate(found) if done is not None]

    def released(events: list[Event]) -> TaskState:
        current = existing_task(task_id, load_or_recover(tasks, task_id, events))
        claim = check_fence(task_id, current, first.token)
        fields = change.fields(claim, utcnow(), current)
        new = core.write_merged(tasks, task_id, current, fields, {}, events)
        events.append(change.event(new))
        return new

    got: list[TaskState] = []  # the task released, as soon as it is

    def both(events: list[Event], later: list[Event]) -> Busy | list[bool | None] | BusyAt:
        if core.unsettled(tasks, task_id):
            return UNSETTLED
        lock = filelock.try_acquire(
            tasks.lock_path(task_id), root=core.anchor, opener=core.ops.open_lock, directory=True
        )
        if lock is None:
            return HELD
        try:
            got.append(core.logged(released, events))
        finally:
            lock.release()
        first.then()
        return try_locked_all(core, targets, [], run, deleted, later)

    waits = LockWait(core.lock_timeout)
    try:
        while True:
            events: list[Event] = []
            later: list[Event] = []
            try:
                outcome = await anyio.to_thread.run_sync(both, events, later)
            finally:
                core.events.notify(events)
                core.events.notify(later)
            if isinstance(outcome, Busy):
                if outcome.unsettled:
                    await core.settle(tasks, task_id)
                else:
                    await waits.again(tasks.lock_path(task_id))
                continue
            if isinstance(outcome, BusyAt):  # released; the records tried again on their own
                outcome = await locked_all_call(core, targets, run, deleted)
            return got[0], [bool(done) for done in outcome], made[0][1]
    finally:
        if got:
            first.told(got[0])
