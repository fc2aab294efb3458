"""Waiting for a file lock: backoff, the wait-for graph, and a deadlock refused.

``LockManager.acquire_file_lock`` comes here when its first try finds the path held
(``Blocked``). The wait polls with async exponential backoff up to its ``timeout``, then
``LockTimeout`` naming the path and the owning session. Each time the owner seen changes, the
edge (session → path → owner) is written to the persisted wait-for graph
(``registry.set_wait``), then the graph is searched for a cycle through the waiting session:
one found refuses this wait with ``DeadlockError`` naming the cycle (``lock.deadlock``), and the
waits already in the graph go on; otherwise ``lock.waiting`` is said. Cycles are checked when a
wait starts or its owner changes, not on every poll, so only the session that closes a cycle
is refused; two waits that close one at the same moment (each written before the other's
look) are both refused, never neither. The edge is cleared when the wait ends, however it
ends.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import anyio

from orchestrator.errors import DeadlockError, LockError, LockTimeout
from orchestrator.events import Event
from orchestrator.events.locks import LockDeadlock, LockWaiting
from orchestrator.locks.registry import OwnerRegistry, find_cycle

__all__ = ["Blocked", "wait_for_lock"]

_MIN_BACKOFF = 0.0005
_MAX_BACKOFF = 0.05

G = TypeVar("G")


@dataclass(frozen=True, slots=True)
class Blocked:
    """A try that found the path held."""

    owner: str | None  # the live session seen holding the path; None while unknown


async def wait_for_lock(
    session: str,
    rel: str,
    timeout: float,
    blocked: Blocked,
    take: Callable[[], Awaitable[G | Blocked]],
    waiting: dict[str, str],
    registry: OwnerRegistry,
    emit: Callable[[Event], Awaitable[None]],
) -> G:
    """Try ``take`` again until it grants ``rel`` to ``session`` (see the module doc).
    ``waiting``: the manager's table of the path each session waits for, kept while it does."""
    deadline = time.monotonic() + timeout
    delay = _MIN_BACKOFF
    waiting[session] = rel
    edge: str | None = None  # the owner our recorded wait points at
    try:
        while True:
            owner = blocked.owner
            if owner == session:
                raise LockError(f"session {session} already holds {rel!r} through another process")
            if owner is not None and owner != edge:
                edge = owner
                await _record_wait(session, rel, owner, registry, emit)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockTimeout(rel, timeout, owner or edge)
            await anyio.sleep(min(delay, remaining))
            delay = min(delay * 2, _MAX_BACKOFF)
            outcome = await take()
            if not isinstance(outcome, Blocked):
                return outcome
            blocked = outcome
    finally:
        # pop: a caller's second wait of one session (a bug, refused by the manager) must
        # surface as its own LockError, not as a KeyError here.
        waiting.pop(session, None)
        if edge is not None:
            with anyio.CancelScope(shield=True):
                await registry.clear_wait(session)


async def _record_wait(
    session: str,
    rel: str,
    owner: str,
    registry: OwnerRegistry,
    emit: Callable[[Event], Awaitable[None]],
) -> None:
    # Write, then look: of two sessions closing a cycle at once, the later one to write
    # always sees the other's edge, so a cycle is never missed.
    await registry.set_wait(session, rel, owner)
    cycle = find_cycle(session, await registry.waits())
    if cycle is not None:
        await emit(LockDeadlock(session=session, path=rel, cycle=[list(step) for step in cycle]))
        raise DeadlockError(cycle)
    await emit(LockWaiting(session=session, path=rel, owner=owner))
