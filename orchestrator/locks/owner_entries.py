"""A file lock's owner entry in the registry, as its OS lock's holder writes, reads and sweeps it.

Layer 2 of ``LockManager`` when it shares a store (``locks.registry`` keeps the entries;
this module holds the steps that keep them true to the OS locks under them):

- ``register``: the owner entry written by the holder of the path's OS lock, index first (a
  crash between the two writes leaves a hint, never an orphan entry), by compare-and-set on
  the entry it read; an entry replaced meanwhile is read again and the fencing token drawn
  again above it, a few times, then ``LockError``;
- ``live_session``: the session of an entry whose process may still be alive (then it holds
  the OS lock); a dead owner's OS lock is free, so whoever holds it now is a racer not yet
  registered;
- ``clear_stale``: the entries a dead process of a session left (listed in its index, OS lock
  free) dropped, each said as a stale ``lock.released``, and its index hints with them.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import LockError, VersionConflict
from orchestrator.events import Event
from orchestrator.events.locks import LockReleased
from orchestrator.filelock import FileLock
from orchestrator.locks.registry import Owner, OwnerRegistry
from orchestrator.models import utcnow
from orchestrator.process import procid

__all__ = ["clear_stale", "live_session", "register"]

_CLAIM_RETRIES = 3


async def register(
    registry: OwnerRegistry,
    session: str,
    rel: str,
    key: str,
    lock: FileLock,
    token: int,
    current: Owner | None,
) -> tuple[int, datetime, int]:
    """Write the owner entry (the caller holds the OS lock) under ``token`` (drawn with the
    lock); the grant's token and time, and the entry's version."""
    # Index first: a crash between the two writes leaves a hint, never an orphan entry.
    await registry.index_update(session, add={key: rel})
    for attempt in range(_CLAIM_RETRIES):
        if attempt:  # the entry we read was replaced: a token above its one
            floor = current.token if current else 0
            token = await anyio.to_thread.run_sync(lock.bump_counter, floor)
        since = utcnow()
        owner = Owner(rel, session, token, since, procid.current(), 0)
        try:
            version = await registry.claim(key, owner, current.version if current else 0)
        except VersionConflict:
            # The previous holder deleted its entry after we read it: read again.
            current = await registry.owner(key)
            continue
        return token, since, version
    raise LockError(f"{rel!r}: its registry entry keeps changing while we hold its OS lock")


async def live_session(current: Owner | None) -> str | None:
    """The entry's session if its process may be alive (then it holds the OS lock)."""
    if current is None:
        return None
    if current.proc is None or current.proc == procid.current():
        return current.session
    alive = await anyio.to_thread.run_sync(procid.is_alive, current.proc)
    # A dead owner's OS lock is free, so whoever holds it now is a racer not yet registered.
    return None if alive is False else current.session


async def clear_stale(
    registry: OwnerRegistry,
    session: str,
    files_dir: Path,
    try_os_lock: Callable[[Path], Awaitable[FileLock | None]],
    emit: Callable[[Event], Awaitable[None]],
) -> int:
    """Drop the entries a dead process of ``session`` left; the index hints go too. How many
    entries were dropped."""
    stale = 0
    done: list[str] = []
    for key in await registry.index(session):
        current = await registry.owner(key)
        if current is None or current.session != session:
            done.append(key)  # released, or taken over by someone else since
            continue
        probe = await try_os_lock(files_dir / f"{key}.lock")
        if probe is None:
            continue  # held by a live process (another incarnation of the session)
        try:
            if await registry.drop(key, current.version):
                stale += 1
                done.append(key)
                await emit(
                    LockReleased(lock="file", session=session, path=current.path, stale=True)
                )
        finally:
            probe.release()
    await registry.index_update(session, remove=done)
    return stale
