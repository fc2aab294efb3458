"""The attempt's side of the seam: what a feature may do at an attempt's fixed points.

An attempt runs the same path whatever the run has on (``runner``, ``lander``,
``failures``, ``relander``); a feature (team mode, pull requests, the collision radar, …) takes
part through an ``AttemptPart`` the run lists (``scheduler.parts``), and the attempt's modules
call ``AttemptParts``, never the feature by name. A part overrides only the points it takes part
in; the defaults do nothing and decide nothing.

The points, in the order an attempt meets them:

- ``starting(attempt, state)``: the task's record as the attempt found it, before its claim
  (a pull request's feedback for the next build is read here);
- ``claimed(attempt)``: the claim is taken; a reason makes the task go back to the queue
  uncounted (another workstation owns one of its files);
- ``adopt(attempt, session_id, state)``: its kept worktree session is not in this clone: a
  worktree a part can give it (another workstation's published branch, a pull request's head),
  the first part's answer taken; None from every part starts afresh;
- ``forking(attempt)``: a new worktree is about to fork from the base (fetch it first);
- ``fork_at(attempt, state)``: the commit a new worktree starts from instead of the base's
  tip (a stacked pull request's: the head below it, recorded), the first part's answer taken;
- ``with_fork(attempt, session_id)``: blocking work of the part's own (it must not raise) done
  in the worker-thread call that forks the attempt's new worktree (one hop for both: a
  session's block of ports claimed); None: none;
- ``phase_starting(attempt, phase)``: a phase is about to start in the attempt's worktree
  (its session's services started, ``ServiceFailed`` failing the phase); the session's side
  its CLI and checks get (its network, its variables): the parts' variables together, the
  first part's network taken;
- ``phase_ending(attempt)``: a phase's work is committed and about to be recorded complete:
  records of the part's (``state.carried``) that store call carries (the radar's first
  sighting of the session), before ``phase_ended``;
- ``phase_ended(attempt)``: a phase's work is committed (publish it, look at it);
- ``lands(attempt)``: its work is ready: True when a part lands it its own way (a pull request),
  the merge queue then does not;
- ``landing(attempt)``: the merge queue is to land it: a result a part got for it instead (a
  teammate landed it in the team's train, ``team.train``), the first part's taken; None from
  every part: this workstation's queue lands it;
- ``outside(attempt, tip, fetch=)``: why the task fails for commits of ``tip`` that reached the
  base outside every queue, where it would otherwise end (done, or a build that changed
  nothing); None when none did;
- ``landed_elsewhere(state)``: a task recorded done whose landing is not the queue's own (a
  forge merged its pull request), so the check that landings stay on the base skips it;
- ``leaving(attempt)``: its worktree is about to be removed after its landing: records of its
  end the part lets that removal's store call delete (the radar's sighting), the ones that
  went named in ``attempt.forgotten`` by ``ended``;
- ``ended(attempt)``: the attempt is over, however it ended (shielded; release what it took).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace

from orchestrator.merge.types import MergeResult
from orchestrator.models import TaskState
from orchestrator.sandbox.commands import SessionSide
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.state.carried import Carrier
from orchestrator.state.deletions import Deletion
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["AttemptPart", "AttemptParts"]


class AttemptPart:
    """A part that takes part in nothing: every point does nothing and decides nothing."""

    async def starting(self, attempt: Attempt, state: TaskState) -> None:
        return None

    async def claimed(self, attempt: Attempt) -> str | None:
        return None

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        return None

    async def forking(self, attempt: Attempt) -> None:
        return None

    async def fork_at(self, attempt: Attempt, state: TaskState) -> str | None:
        return None

    def with_fork(self, attempt: Attempt, session_id: str) -> Callable[[], None] | None:
        return None

    async def phase_starting(self, attempt: Attempt, phase: str) -> SessionSide | None:
        return None

    def phase_ending(self, attempt: Attempt) -> Sequence[Carrier]:
        return ()

    async def phase_ended(self, attempt: Attempt) -> None:
        return None

    async def lands(self, attempt: Attempt) -> bool:
        return False

    async def landing(self, attempt: Attempt) -> MergeResult | None:
        return None

    async def outside(self, attempt: Attempt, tip: str, *, fetch: bool = False) -> str | None:
        return None

    def landed_elsewhere(self, state: TaskState) -> bool:
        return False

    def leaving(self, attempt: Attempt) -> Sequence[Deletion]:
        return ()

    async def ended(self, attempt: Attempt) -> None:
        return None


class AttemptParts:
    """The run's parts at an attempt's points, each asked in the order the run lists them."""

    def __init__(self, parts: Sequence[AttemptPart] = ()) -> None:
        self._parts = tuple(parts)

    @property
    def phase_listeners(self) -> bool:
        """Some part does something at a phase's end (else the workflow is given no hook)."""
        return any(type(p).phase_ended is not AttemptPart.phase_ended for p in self._parts)

    async def starting(self, attempt: Attempt, state: TaskState) -> None:
        for part in self._parts:
            await part.starting(attempt, state)

    async def claimed(self, attempt: Attempt) -> str | None:
        for part in self._parts:
            reason = await part.claimed(attempt)
            if reason is not None:
                return reason
        return None

    async def adopt(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        for part in self._parts:
            adopted = await part.adopt(attempt, session_id, state)
            if adopted is not None:
                return adopted
        return None

    async def forking(self, attempt: Attempt) -> None:
        for part in self._parts:
            await part.forking(attempt)

    async def fork_at(self, attempt: Attempt, state: TaskState) -> str | None:
        for part in self._parts:
            start = await part.fork_at(attempt, state)
            if start is not None:
                return start
        return None

    def with_fork(self, attempt: Attempt, session_id: str) -> Callable[[], None] | None:
        """Every part's work for the new worktree's forking call, in the run's order, as one
        (None when no part has any)."""
        works = [w for p in self._parts if (w := p.with_fork(attempt, session_id)) is not None]
        if not works:
            return None

        def all_of() -> None:
            for work in works:
                work()

        return all_of

    @property
    def phase_starters(self) -> bool:
        """Some part does something at a phase's start (else the workflow is given no hook)."""
        return any(type(p).phase_starting is not AttemptPart.phase_starting for p in self._parts)

    async def phase_starting(self, attempt: Attempt, phase: str) -> SessionSide | None:
        side: SessionSide | None = None
        for part in self._parts:
            given = await part.phase_starting(attempt, phase)
            side = given if side is None else _joined(side, given)
        return side

    def phase_ending(self, attempt: Attempt) -> list[Carrier]:
        return [carrier for part in self._parts for carrier in part.phase_ending(attempt)]

    async def phase_ended(self, attempt: Attempt) -> None:
        for part in self._parts:
            await part.phase_ended(attempt)

    async def lands(self, attempt: Attempt) -> bool:
        for part in self._parts:
            if await part.lands(attempt):
                return True
        return False

    async def landing(self, attempt: Attempt) -> MergeResult | None:
        for part in self._parts:
            merged = await part.landing(attempt)
            if merged is not None:
                return merged
        return None

    async def outside(self, attempt: Attempt, tip: str, *, fetch: bool = False) -> str | None:
        for part in self._parts:
            why = await part.outside(attempt, tip, fetch=fetch)
            if why is not None:
                return why
        return None

    def landed_elsewhere(self, state: TaskState) -> bool:
        return any(part.landed_elsewhere(state) for part in self._parts)

    def leaving(self, attempt: Attempt) -> list[Deletion]:
        return [deletion for part in self._parts for deletion in part.leaving(attempt)]

    async def ended(self, attempt: Attempt) -> None:
        """Every part hears the end, even when one of them raises (the first error then)."""
        first: BaseException | None = None
        for part in self._parts:
            try:
                await part.ended(attempt)
            except Exception as exc:
                first = first or exc
        if first is not None:
            raise first


def _joined(side: SessionSide, given: SessionSide | None) -> SessionSide:
    """Two parts' sides as one: both's variables (the earlier part's first), one network."""
    if given is None:
        return side
    join = side.join if side.join is not None else given.join
    return replace(side, env={**given.env, **side.env}, join=join)
