"""``wait_for_update`` for any backend: read the record, and while it is not newer than the
version the caller has, wait for a change that names it.

The stream is entered before the first read, so a write landing between the read and the wait
is heard. A change that names the record (or a resync) is only a reason to read it again: the
read decides. The record is also read again every ``recheck`` seconds without one, so an
announcement lost (an event log that could not be appended to, a notice dropped) costs at most
that much delay, never a wait that runs to its timeout.
"""

from __future__ import annotations

import math
import time
from typing import TYPE_CHECKING, TypeVar

import anyio
from pydantic import BaseModel

from orchestrator.state.changes import SESSIONS, TASKS, ChangeStream, RecordRef, matching

if TYPE_CHECKING:
    from orchestrator.state.protocol import StateStore

__all__ = ["RECHECK", "read_ref", "wait_for_update"]

R = TypeVar("R", bound=BaseModel)

RECHECK = 2.0  # seconds between reads of the record when no change names it


async def read_ref(store: StateStore, ref: RecordRef[R]) -> R | None:
    """The record ``ref`` names, as the store has it now (None when there is none)."""
    found: BaseModel | None
    if ref.kind == TASKS:
        found = await store.get_task_state(ref.key)
    elif ref.kind == SESSIONS:
        found = await store.get_session(ref.key)
    elif (namespace := ref.namespace) is not None:
        found = await store.get_record(namespace, ref.key)
    else:
        raise ValueError(f"no record kind {ref.kind!r}: tasks, sessions or records/<namespace>")
    assert found is None or isinstance(found, ref.model)
    return found


async def wait_for_update(
    store: StateStore,
    stream: ChangeStream,
    ref: RecordRef[R],
    after_version: int,
    timeout: float | None,
    recheck: float = RECHECK,
) -> R | None:
    """The record once its version is above ``after_version``; None when ``timeout`` seconds
    pass first (module doc). ``stream`` is closed on return."""
    deadline = math.inf if timeout is None else time.monotonic() + max(timeout, 0.0)
    try:
        # Hearing is put in place first (within the deadline: a database that cannot be
        # reached must not hold the caller past it); a record already newer is returned
        # whether or not it is.
        with anyio.move_on_after(deadline - time.monotonic()):
            await stream.start()
        while True:
            record = await read_ref(store, ref)
            if record is not None and int(getattr(record, "version", 0)) > after_version:
                return record
            left = deadline - time.monotonic()
            if left <= 0:
                return None
            with anyio.move_on_after(min(left, recheck)):
                while not matching(await stream.next_batch(), ref):
                    pass
    finally:
        with anyio.CancelScope(shield=True):
            await stream.aclose()
