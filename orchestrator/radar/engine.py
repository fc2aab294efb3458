"""``Radar``: the incremental engine that keeps the store's collision records true.

It keeps each of this workstation's live sessions' last ``Sighting`` (its tip and diff against
the base). A look (``moved`` at a session's phase commit, ``look`` on the timer over every live
session) reads each session's ``Snapshot`` from its worktree (``snapshot``; two git processes,
no lock taken) and compares its digest with the last: only a session that moved has its
sighting written and its pairs computed again, against every other live session (this
workstation's from memory; in a team also the other workstations' sightings from the store).
A pair that shares a file is graded (``overlap``), and only then, when both tips hold commits
of their own, asked of ``git merge-tree --write-tree`` (``merges.TipMerges``: cached by the two
tips, so a session whose uncommitted diff moved but not its tip costs no merge); its record is
made by ``findings.collision_of``. Collision records are written,
changed or deleted with version checks, so two workstations that compute the same pair agree
and only one says so (``radar.collision`` on creation, and again when a rewrite makes it
graver, ``escalated_from`` the grade it had; ``radar.resolved`` on deletion).

``ended`` removes a session that ended (landed, failed, cancelled): its sighting, and every
collision it was in; the timer's ``look`` also ends the collisions of sessions sighted nowhere
(their sightings expired: a run that died, a workstation gone). ``full`` is the
non-incremental pass the bench compares with.

Passes are serialized (one lock): the phase commits of many sessions and the timer may ask at
once, and each pass is cheap. Git runs in a worker thread, one hop per pass; a phase commit's
session is read and, if it moved, its sighting written in one store call (``put_made_record``:
that same hop on the file store), or its first sighting in its phase's completion's call
(``first_carried``). Every other write of a pass (the timer's sightings, the collisions, an
end's deletions) is gathered (``writes.PassWrites``) and made in one store call at its end,
however many sessions moved; the live collisions are read once a pass, and what they are after
its writes kept (``known``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.repo import Git
from orchestrator.models import KeyedRecord
from orchestrator.radar.findings import collision_of
from orchestrator.radar.merges import TipMerges
from orchestrator.radar.overlap import compare
from orchestrator.radar.records import (
    COLLISIONS,
    SIGHTINGS,
    Collision,
    Sighting,
    collision_key,
    ranked,
    read_collision,
    sightings,
)
from orchestrator.radar.snapshot import read_snapshot
from orchestrator.radar.writes import PassWrites
from orchestrator.state.carried import CarriedPut, Carrier
from orchestrator.state.deletions import Deletion
from orchestrator.state.protocol import StateStore

__all__ = ["LiveSession", "PassCost", "Radar"]

log = logging.getLogger(__name__)

_NOT_HANDED = -1.0  # no ``leaving`` was asked (no time a sighting was written at)
SIGHTING_TTL = 600.0  # seconds a sighting lasts unless written again (a workstation that died)


@dataclass(frozen=True, slots=True)
class LiveSession:
    """One of this workstation's live sessions: its worktree and where it forked."""

    session_id: str
    task_id: str
    path: Path
    fork: str | None = None
    branch: str | None = None  # its branch, as a team publishes it for the others to fetch


@dataclass(slots=True)
class PassCost:
    """What the last pass did: for the bench and the tests."""

    read: int = 0  # sessions whose worktree was read
    moved: int = 0  # of those, the ones whose work moved
    pairs: int = 0  # pairs compared
    merges: int = 0  # merge-trees asked for
    git: int = 0  # git processes started
    keys: set[str] = field(default_factory=set)  # the pairs compared, by collision key


@dataclass
class Radar:
    """See module doc. ``workstation``: this one's id in a team (None alone); ``team``: also
    compare with the other workstations' sightings in the store."""

    store: StateStore
    git: Git
    base_ref: str
    workstation: str | None = None
    team: bool = False
    remote: str | None = None  # a team's remote, where the others' published branches are
    sighting_ttl: float = SIGHTING_TTL
    last: PassCost = field(default_factory=PassCost)
    changes: int = 0  # collision records this radar wrote or removed, counted up
    known: list[Collision] | None = None  # the live collisions after the last pass, if it read them
    _seen: dict[str, Sighting] = field(default_factory=dict)
    _written_at: dict[str, float] = field(default_factory=dict)
    _merges: TipMerges = field(init=False)
    _lock: anyio.Lock = field(default_factory=anyio.Lock)
    # Session -> when its sighting was last written as its deletion was handed out
    # (``leaving``): ``ended`` skips the deletion that went unless it was written since.
    _handed: dict[str, float | None] = field(default_factory=dict)
    _carried: dict[str, Sighting] = field(default_factory=dict)  # (``first_carried``)

    def __post_init__(self) -> None:
        self._merges = TipMerges(self.remote, self.workstation)

    # -- the looks ---------------------------------------------------------------------------

    async def moved(self, session: LiveSession) -> PassCost:
        """A phase commit of ``session``: read it; if it moved, its pairs again."""
        async with self._lock:
            writes = PassWrites(self.sighting_ttl)
            stored = _Stored()
            cost = await self._pass([session], writes, stored, force=False, everyone=False)
            await self._commit(writes, stored)
            return cost

    async def look(self, sessions: Sequence[LiveSession]) -> PassCost:
        """The timer's look over this workstation's live ``sessions``: each read, the pairs of
        those that moved computed again; a session seen before and not live now ended. The
        live collisions read once for all of it, and its writes made in one store call."""
        async with self._lock:
            writes = PassWrites(self.sighting_ttl)
            stored = _Stored(await self._stored_collisions())
            live = {s.session_id for s in sessions}
            for gone in [sid for sid in self._seen if sid not in live]:
                self._end(gone, writes, stored)
            cost = await self._pass(sessions, writes, stored, force=False, everyone=True)
            await self._sweep(writes, stored)
            await self._commit(writes, stored)
            return cost

    async def full(self, sessions: Sequence[LiveSession]) -> PassCost:
        """Every session read and every pair computed, moved or not (the bench's baseline)."""
        async with self._lock:
            self._merges.clear()
            writes, stored = PassWrites(self.sighting_ttl), _Stored()
            cost = await self._pass(sessions, writes, stored, force=True, everyone=True)
            await self._commit(writes, stored)
            return cost

    def first_carried(self, session: LiveSession) -> Carrier | None:
        """``moved``'s first look at a session never sighted, as a write another room's store
        call carries (``state.carried``: its phase's completion), its snapshot read in that
        call; ``moved`` then takes it as read and written. None: sighted before."""
        sid, made = session.session_id, list[Sighting]()
        if sid in self._seen:
            return None

        def make(_: KeyedRecord | None) -> dict[str, object] | None:
            try:  # (the radar advises: nothing of it fails the call carrying it)
                made.extend(self._read_all(GitCalls(self.git), [session]))
            except (GitError, WorkspaceError, OSError) as exc:
                log.warning("the collision radar could not look: %s", exc)
            return made[0].model_dump(mode="json") if made else None  # (None: no snapshot)

        def done(record: KeyedRecord | None) -> None:
            if record is not None and made:
                self._carried[sid], self._written_at[sid] = made[0], anyio.current_time()

        put = CarriedPut(SIGHTINGS, sid, make, durable=False, ttl=self.sighting_ttl)
        return Carrier(put, done)

    def leaving(self, session_id: str) -> Deletion:
        """The deletion of ``session_id``'s sighting, for a store call of the caller's making
        (the landing's, with its worktree's record): ``ended(session_id, deleted=True)`` then
        makes it only if the sighting was written again since (a look meanwhile)."""
        self._handed[session_id] = self._written_at.get(session_id)
        return Deletion(SIGHTINGS, session_id)

    async def ended(self, session_id: str, *, deleted: bool = False) -> list[Collision]:
        """``session_id`` ended: its sighting and its collisions go (``radar.resolved``), in
        one store call. The live collisions left, as ``records.collisions`` reads them, from
        the one read this took (its caller needs not read them again). ``deleted``: the
        sighting's deletion ``leaving`` handed out was made."""
        async with self._lock:
            writes = PassWrites(self.sighting_ttl)
            stored = _Stored(await self._stored_collisions())
            self._end(session_id, writes, stored, deleted=deleted)
            await self._commit(writes, stored)
            return self.known or []

    # -- one pass ----------------------------------------------------------------------------

    async def _pass(
        self,
        sessions: Sequence[LiveSession],
        writes: PassWrites,
        stored: _Stored,
        *,
        force: bool,
        everyone: bool,
    ) -> PassCost:
        cost = PassCost()
        calls = GitCalls(self.git)
        published: set[str] = set()
        one = sessions[0].session_id if len(sessions) == 1 else None
        if not force and one is not None and (not everyone or one not in self._seen):
            carried = self._carried.pop(one, None)
            # Read and published at once: carried by its phase's completion, or here.
            read = [carried] if carried else await self._look_one(calls, sessions[0])
            published = {s.session_id for s in read}
        else:
            read = await anyio.to_thread.run_sync(self._read_all, calls, list(sessions))
        cost.read = len(sessions)
        moved: list[Sighting] = []
        for sighting in read:
            before = self._seen.get(sighting.session_id)
            if force or before is None or before.digest != sighting.digest:
                moved.append(sighting)
                self._seen[sighting.session_id] = sighting
                if sighting.session_id not in published:
                    writes.publish(sighting)
            elif everyone and self._stale(sighting.session_id):
                writes.publish(before)  # still live: its time to live renewed
        cost.moved = len(moved)
        if moved:
            others = await self._everyone()
            found = await stored.read(self)
            for mine in moved:
                for other in others.values():
                    if other.session_id == mine.session_id:
                        continue
                    key = collision_key(mine.session_id, other.session_id)
                    if writes.acted(key) or key in cost.keys:
                        continue
                    cost.keys.add(key)
                    cost.pairs += 1
                    await self._pair(calls, cost, writes, key, mine, other, found.get(key))
                # A collision with a session no longer sighted anywhere is over.
                for key, collision in found.items():
                    sides = {collision.a.session_id, collision.b.session_id}
                    ended = mine.session_id in sides and not sides <= set(others)
                    if ended and key not in cost.keys:
                        writes.resolve(collision, "ended")
        cost.git = calls.count
        self.last = cost
        return cost

    async def _look_one(self, calls: GitCalls, session: LiveSession) -> list[Sighting]:
        """One session read, and its sighting written if it moved (always, when never
        sighted), in one store call (one worker-thread call on the file store)."""
        sid = session.session_id

        def made() -> tuple[dict[str, object], Sighting]:
            found = self._read_all(calls, [session])
            if not found:
                raise _Unseen  # no snapshot (its worktree gone): nothing written
            if found[0] is self._seen.get(sid):
                raise _Unmoved  # as last seen: nothing written
            return found[0].model_dump(mode="json"), found[0]

        try:
            _, sighting = await self.store.put_made_record(
                SIGHTINGS, sid, made, durable=False, ttl=self.sighting_ttl
            )
        except _Unseen:
            return []
        except _Unmoved:
            return [self._seen[sid]]
        self._written_at[sid] = anyio.current_time()
        return [sighting]

    def _read_all(self, calls: GitCalls, sessions: list[LiveSession]) -> list[Sighting]:
        found = []
        for session in sessions:
            snap = read_snapshot(calls, session.path, self.base_ref)
            if snap is None:
                continue
            before = self._seen.get(session.session_id)
            if before is not None and before.digest == snap.digest:
                found.append(before)  # unchanged: not parsed again
                continue
            found.append(
                Sighting.of(
                    session.session_id,
                    session.task_id,
                    snap.tip,
                    session.fork,
                    snap.digest,
                    snap.files(),
                    self.workstation,
                    session.branch,
                )
            )
        return found

    async def _everyone(self) -> dict[str, Sighting]:
        """Every live session to compare with: this workstation's, and in a team the others'."""
        found = dict(self._seen)
        if self.team:
            for sighting in await sightings(self.store):
                if sighting.workstation != self.workstation:
                    found.setdefault(sighting.session_id, sighting)
        return found

    async def _stored_collisions(self) -> dict[str, Collision]:
        found = {}
        for record in await self.store.list_records(COLLISIONS):
            collision = read_collision(record.data)
            if collision is not None:
                found[record.key] = collision
        return found

    async def _pair(
        self,
        calls: GitCalls,
        cost: PassCost,
        writes: PassWrites,
        key: str,
        mine: Sighting,
        other: Sighting,
        stored: Collision | None,
    ) -> None:
        overlap = compare(mine.diffs(), other.diffs())
        if overlap.severity is None:
            if stored is not None:
                writes.resolve(stored, "apart")
            return
        conflicts: list[str] | None = None
        if mine.committed and other.committed:
            conflicts = await self._merges.conflicts(calls, cost, mine, other)
        found = collision_of(key, mine, other, overlap, conflicts, stored)
        if stored is not None and stored.same_finding(found):
            return
        writes.write(found, stored)

    # -- the store ---------------------------------------------------------------------------

    async def _commit(self, writes: PassWrites, stored: _Stored) -> None:
        """The pass's writes in one store call; ``known`` the live collisions after it, when
        the pass read them."""
        done = await writes.commit(self.store, stored.found or {})
        self._written_at.update(done.published)
        self.changes += done.changes
        self.known = None if stored.found is None else ranked(done.live.values())

    def _stale(self, session_id: str) -> bool:
        written = self._written_at.get(session_id)
        return written is None or anyio.current_time() - written > self.sighting_ttl / 3

    def _end(
        self, session_id: str, writes: PassWrites, stored: _Stored, *, deleted: bool = False
    ) -> None:
        """The session's sighting and collisions go (``stored``: read)."""
        self._seen.pop(session_id, None)
        self._carried.pop(session_id, None)
        written = self._written_at.pop(session_id, None)
        handed = self._handed.pop(session_id, _NOT_HANDED)
        if not (deleted and handed == written):  # (else deleted, and not written since)
            writes.forget(session_id)
        for found in (stored.found or {}).values():
            if session_id in (found.a.session_id, found.b.session_id):
                writes.resolve(found, "ended")

    async def _sweep(self, writes: PassWrites, stored: _Stored) -> None:
        """Collisions of sessions sighted nowhere any more (a run that died, a workstation
        gone: their sightings expired) are over. The sightings in the store are read only
        for a collision with a side this radar does not see."""
        seen = set(self._seen)
        unsure = [
            found
            for key, found in (stored.found or {}).items()
            if not writes.acted(key) and not {found.a.session_id, found.b.session_id} <= seen
        ]
        if not unsure:
            return
        sighted = seen | {s.session_id for s in await sightings(self.store)}
        for found in unsure:
            if not {found.a.session_id, found.b.session_id} <= sighted:
                writes.resolve(found, "ended")

    def seen(self) -> Iterable[Sighting]:
        return tuple(self._seen.values())


class _Unseen(Exception):
    """A session's snapshot could not be read (``Radar._look_one``)."""


class _Unmoved(Exception):
    """A session's snapshot is as last seen (``Radar._look_one``): nothing to write."""


class _Stored:
    """The live collisions a pass read from the store: once, when it first needs them."""

    def __init__(self, found: dict[str, Collision] | None = None) -> None:
        self.found = found

    async def read(self, radar: Radar) -> dict[str, Collision]:
        if self.found is None:
            self.found = await radar._stored_collisions()
        return self.found
