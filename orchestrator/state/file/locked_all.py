"""Several records' locks held for one blocking call, in the file backend: ``locked_all_call``,
what ``FileCore.locked_call`` is for one record (``keyed.delete_records`` uses it).

Every lock is tried in one worker-thread call, in the global order of ``state.transactions``,
while holding no other; one that is busy lets every lock go and the call is tried again after
a back-off (a transaction a dead process left on one of them is finished first). A record
with no directory is not locked: taking its lock would make one.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any, TypeVar

import anyio
import anyio.to_thread

from orchestrator import filelock
from orchestrator.events import Event
from orchestrator.filelock import LockWait
from orchestrator.state.file.core import HELD, UNSETTLED, Busy, FileCore
from orchestrator.state.file.record_files.records import RecordKind

__all__ = ["BusyAt", "Places", "locked_all_call", "try_locked_all"]

T = TypeVar("T")
Places = Sequence[tuple[RecordKind[Any], str]]


class _BusyAt:
    """What a try gives when one record's lock stopped it."""

    def __init__(self, busy: Busy, kind: RecordKind[Any], key: str) -> None:
        self.busy, self.kind, self.key = busy, kind, key


async def locked_all_call(
    core: FileCore,
    targets: Callable[[], Places],
    fn: Callable[[list[Event], Collection[int]], T],
    unlink: Callable[[T], Collection[int]],
) -> T:
    """``fn`` under the locks of every record ``targets()`` names that has a directory, in
    one worker-thread call when nobody else holds any of them (module doc). ``targets`` is
    blocking work too: called once, in the first try's call (a later try reuses its answer).
    ``unlink(result)``: the places in ``targets()`` of the records ``fn`` deleted, whose lock
    files go while held (a racer that opened one notices), their directories too if empty.
    ``fn`` is given the places of the records it holds the locks of."""
    await core.settle_first()
    named: list[Places] = []
    waits = LockWait(core.lock_timeout)
    while True:
        events: list[Event] = []
        try:
            outcome = await anyio.to_thread.run_sync(
                _try_locked_all, core, targets, named, fn, unlink, events
            )
        finally:
            core.events.notify(events)
        if not isinstance(outcome, _BusyAt):
            return outcome
        kind, key = outcome.kind, outcome.key
        if outcome.busy.unsettled:
            await core.settle(kind, key)
            continue
        await waits.again(kind.lock_path(key))


def _try_locked_all(
    core: FileCore,
    targets: Callable[[], Places],
    named: list[Places],
    fn: Callable[[list[Event], Collection[int]], T],
    unlink: Callable[[T], Collection[int]],
    events: list[Event],
) -> T | _BusyAt:
    """One try (blocking, in a worker thread)."""
    if not named:
        named.append(list(targets()))
    places = named[0]
    order = sorted(range(len(places)), key=lambda at: core.record_id(*places[at]))
    held: dict[int, filelock.FileLock] = {}
    try:
        for at in order:
            kind, key = places[at]
            if core.unsettled(kind, key):
                return _BusyAt(UNSETTLED, kind, key)
            if not kind.dir_for(key).exists():
                continue
            lock = filelock.try_acquire(
                kind.lock_path(key), root=core.anchor, opener=core.ops.open_lock, directory=True
            )
            if lock is None:
                return _BusyAt(HELD, kind, key)
            held[at] = lock
        locked = frozenset(held)
        result = core.logged(lambda ev: fn(ev, locked), events)
        for at in unlink(result):
            lock = held.pop(at, None)
            if lock is not None:
                kind, key = places[at]
                try:
                    kind.remove_dir_if_empty(key)  # the lock is the directory: while held
                finally:
                    lock.release()
        return result
    finally:
        for lock in held.values():
            lock.release()


# For a call that tries these locks after work of its own in the same worker-thread call
# (``release_then_delete``): one try, and what a busy lock gives.
BusyAt = _BusyAt
try_locked_all = _try_locked_all
