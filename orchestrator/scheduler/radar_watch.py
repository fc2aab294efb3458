"""The collision radar in a run (``orchestrator.radar``): when it looks, and what it holds.

``RadarWatch`` is the scheduler's part over one ``Radar``:

- ``committed(attempt)``: a phase's work was saved on the attempt's branch (the workflow's
  ``on_phase_end``): that session is read and, if it moved, its pairs computed again;
- ``watch()``: every ``radar.interval`` seconds, every live session of this workstation is read
  (the uncommitted diffs of long phases): the pairs of those that moved computed again, and the
  live collisions read back from the store (other workstations' too; alone, only after a look
  that wrote or removed one, and then taken from the look's own read with its writes made:
  nobody else writes them); a look's writes (every sighting, every collision) are one store
  call (``radar.writes``);
- ``ended(attempt)``: the attempt is over (landed, failed, requeued, cancelled): its sighting
  and its collisions go, ``radar.resolved``; a landing deletes the sighting in its worktree
  removal's own store call (``leaving``), not written again since: then ``ended`` does not;
- ``dispatch(task, state)`` (``holding``): with ``radar: sequence``, why a task not started yet
  waits (a live collision graded ``hunks`` or ``conflict`` on one of its declared files), kept
  in its record's metadata (``TaskMeta.hold.radar_hold``) so ``council status`` says it; the
  tick is woken when the collisions change.

The radar advises: a failure of it (git, the store) is logged and never fails an attempt or
the run.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Sequence

import anyio

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, StoreUnavailable
from orchestrator.models import TaskState
from orchestrator.radar.engine import LiveSession, Radar
from orchestrator.radar.records import SIGHTINGS, Collision, collisions
from orchestrator.radar.warning import holding, waits_for
from orchestrator.radar.warning import marks as marks_of
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import Loop, RunPart
from orchestrator.state.carried import Carrier
from orchestrator.state.deletions import Deletion
from orchestrator.task_meta import TaskMeta

__all__ = ["RadarWatch"]

log = logging.getLogger(__name__)


class RadarWatch(RunPart):
    """The radar as a part of the run (``parts.RunPart``): at an attempt's points, beside
    the tick, before a dispatch and on the board."""

    def __init__(self, run: RunContext, inflight: InFlight, wake: Callable[[], None]) -> None:
        services = run.services
        team = services.team
        self._config = services.config.radar
        self._run = run
        self._inflight = inflight
        self._wake = wake
        self.radar = Radar(
            services.store,
            services.merges.git,
            services.worktrees.base_ref,
            workstation=None if team is None else team.workstation,
            team=team is not None,
            remote=None if team is None else team.remote,
        )
        self.collisions: list[Collision] = []
        self._read = False  # the live collisions read from the store once at least

    @property
    def sequence(self) -> bool:
        return self._config.mode == "sequence"

    def live(self) -> list[LiveSession]:
        """This workstation's live sessions: every attempt in flight with a worktree."""
        return [
            LiveSession(
                a.session.session_id,
                a.task.id,
                a.session.path,
                a.session.base_commit,
                a.session.branch,
            )
            for a in self._inflight
            if a.session is not None
        ]

    async def committed(self, attempt: Attempt) -> None:
        session = attempt.session
        if session is None:
            return
        live = LiveSession(
            session.session_id, attempt.task.id, session.path, session.base_commit, session.branch
        )
        await self._advise(self.radar.moved(live))

    def phase_ending(self, attempt: Attempt) -> Sequence[Carrier]:
        """A session's first sighting, carried by its phase's completion; alone only: in a team
        it is written after the branch is published (``phase_ended``), as the others read it."""
        session = attempt.session
        if session is None or self.radar.team:
            return ()
        live = LiveSession(
            session.session_id, attempt.task.id, session.path, session.base_commit, session.branch
        )
        carrier = self.radar.first_carried(live)
        return (carrier,) if carrier is not None else ()

    async def phase_ended(self, attempt: Attempt) -> None:
        await self.committed(attempt)

    def leaving(self, attempt: Attempt) -> Sequence[Deletion]:
        if attempt.session is None:
            return ()
        return (self.radar.leaving(attempt.session.session_id),)  # with its worktree's record

    async def ended(self, attempt: Attempt) -> None:
        if attempt.session is not None:
            sid = attempt.session.session_id
            deleted = (SIGHTINGS, sid) in attempt.forgotten  # with its worktree's record
            # The collisions left come back from the end's own read: not read a second time.
            await self._advise(self.radar.ended(sid, deleted=deleted))

    async def watch(self, scope: anyio.CancelScope) -> None:
        """Look every ``radar.interval`` seconds until ``scope`` is cancelled."""
        with scope:
            while True:
                await self._advise(self.radar.look(self.live()))
                await anyio.sleep(self._config.interval)

    def beside(
        self, wake: Callable[[], None], down: Callable[[StoreUnavailable], None]
    ) -> Loop | None:
        return self.watch

    async def dispatch(self, task: TaskConfig, state: TaskState) -> tuple[TaskState, str | None]:
        """``radar: sequence``: why ``task`` waits for a live collision, kept in its record."""
        collision = self.holding(task)
        return await self.mark(state, collision), collision

    def marks(self) -> dict[str, str]:
        return marks_of(self.collisions)

    def holding(self, task: TaskConfig) -> str | None:
        """Why ``task`` waits for a live collision (``radar: sequence``); None when it does not."""
        if not self.sequence or not task.files:
            return None
        found = holding(self.collisions, task.files)
        return None if found is None else waits_for(found, task.files)

    async def mark(self, state: TaskState, reason: str | None) -> TaskState:
        """Keep why ``state``'s task waits for a collision in its record, written on change;
        the record as it is now."""
        meta = TaskMeta.read(state.metadata)
        if meta.hold.radar_hold == reason:
            return state
        meta.hold.radar_hold = reason
        store = self._run.services.store
        return await store.update_task_state(state.task_id, {"metadata": meta.dump()})

    async def _advise(self, work: Awaitable[object]) -> None:
        """Run one of the radar's passes, then read the live collisions back (unless the pass
        gave them: a list); a failure is logged, never raised (the radar advises). Alone, nobody
        but this radar writes them: once read, they are read again only after a pass that wrote
        or removed one, and not even then when that pass read them (``Radar.known``: what it
        read, with its own writes made)."""
        radar = self.radar
        try:
            written = radar.changes
            done = await work
            if isinstance(done, list):
                found = done
            elif self._read and not radar.team and radar.changes == written:
                return  # none changed since the last read
            elif not radar.team and radar.known is not None:
                found = radar.known  # read by the pass, its writes made since: as stored
            else:
                found = await collisions(self._run.services.store)
        except (CouncilError, OSError) as exc:
            log.warning("the collision radar could not look: %s", exc)
            return
        self._read = True
        before = {c.key: c.severity for c in self.collisions}
        self.collisions = found
        if self.sequence and before != {c.key: c.severity for c in found}:
            self._wake()
