"""The ownership registry across workstations: one owner per path in the team's store.

On one machine a path's owner is known from its OS lock (``manager``); another workstation has
no OS lock of ours to look at, so in a team the registry itself says who owns a path, and the
owner's claim says whether that still holds. One keyed record per path (namespace
``team-files``, key: a hash of the repository-relative path) names the task and the fencing
token of the attempt that owns it:

- **take**: written by compare-and-set (absent, or replacing a version read: a free path costs
  one write, its record created where none is, with nothing read first); an owner whose
  task no longer holds a live claim with that token (its attempt ended, its workstation died
  and the lease lapsed) is stale and replaced. All of an attempt's paths or none: a path
  owned by a live attempt gives back what this call took and names the owner.
- **release**: only a record still carrying the releaser's token is removed (released by
  fence): an attempt whose claim was taken over cannot release what its successor owns.

A record is never trusted on its own: the claim it points to is read every time someone else
wants the path, so a dead owner costs nothing but the lapse of its lease.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass

from orchestrator.errors import VersionConflict
from orchestrator.models import ClaimStatus, utcnow
from orchestrator.state.protocol import StateStore

__all__ = ["NAMESPACE", "Owned", "TeamFiles"]

NAMESPACE = "team-files"


@dataclass(frozen=True)
class Owned:
    """``path`` is owned by the live attempt ``token`` of ``task_id``, held by ``holder``."""

    path: str
    task_id: str
    holder: str
    token: int


class TeamFiles:
    def __init__(self, store: StateStore) -> None:
        self._store = store

    async def take(
        self, task_id: str, token: int, holder: str, paths: Iterable[str]
    ) -> Owned | None:
        """Own every path for the attempt ``token`` of ``task_id``; None when done, else the
        live owner that refuses one of them (and nothing is kept)."""
        taken: list[str] = []
        for path in sorted(set(paths)):
            refused = await self._take_one(task_id, token, holder, path)
            if refused is not None:
                await self.release(task_id, token, taken)
                return refused
            taken.append(path)
        return None

    async def release(self, task_id: str, token: int, paths: Iterable[str]) -> None:
        """Give back what the attempt ``token`` of ``task_id`` still owns among ``paths``."""
        store = self._store
        for path in set(paths):
            key = _key(path)
            record = await store.get_record(NAMESPACE, key)
            if record is None or (record.data.get("task_id"), record.data.get("token")) != (
                task_id,
                token,
            ):
                continue  # not ours (any more): its owner releases it
            try:
                await store.delete_record(NAMESPACE, key, record.version)
            except VersionConflict:
                continue  # taken over in between: no longer ours to release

    async def _take_one(self, task_id: str, token: int, holder: str, path: str) -> Owned | None:
        store, key = self._store, _key(path)
        data = {
            "path": path,
            "task_id": task_id,
            "token": token,
            "holder": holder,
            "since": utcnow().isoformat(),
        }
        try:
            # The path is free most of the time: taken by creating its record, nothing read.
            await store.put_record(NAMESPACE, key, data, 0)
            return None
        except VersionConflict:
            pass  # it has an owner, live or stale: read it
        for _ in range(5):
            record = await store.get_record(NAMESPACE, key)
            if record is not None:
                owner = await self._live_owner(path, record.data)
                if owner is not None and (owner.task_id, owner.token) != (task_id, token):
                    return owner
            try:
                await store.put_record(
                    NAMESPACE, key, data, 0 if record is None else record.version
                )
            except VersionConflict:
                continue  # someone took or released it meanwhile: look again
            return None
        raise VersionConflict(f"records/{NAMESPACE}/{key}", 0, None)

    async def _live_owner(self, path: str, data: dict[str, object]) -> Owned | None:
        """The owner a record names, if its claim still holds."""
        task_id, token = data.get("task_id"), data.get("token")
        if not isinstance(task_id, str) or not isinstance(token, int):
            return None
        state = await self._store.get_task_state(task_id)
        claim = state.claim if state is not None else None
        if (
            claim is None
            or claim.token != token
            or claim.status != ClaimStatus.ACTIVE
            or not claim.is_live()
        ):
            return None
        return Owned(path, task_id, claim.holder, token)


def _key(path: str) -> str:
    return hashlib.sha256(path.encode()).hexdigest()
