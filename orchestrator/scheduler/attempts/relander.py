"""Landed means still landed: a task recorded ``done`` whose landing vanished from the base lands
again, from its kept branch, or the run says so and ends failed.

**When it is checked.** After each landing (``Lander.on_landed``), at the base tip that landing
just read: the merge queue's trailer index already knows that tip, so while every landing is
still there it costs no git call. When that tip's first-parent chain holds the tip the last
look found every landing on (``Lending.still_on``), only the landings not looked at since are
asked about, so the look costs what changed, not every landing of the run. And when the run
is about to end (every task settled, nothing in flight), at the base read afresh (fetched
first in a team), whole: the exit code is decided only after that look. The tasks checked
are those this session's records say are ``done`` (with the commit they landed in) and that
no attempt here has in flight.

**What counts** is the merge queue's rule (``merge.vanished``): the ``Council-Task`` trailer on
the base's first-parent history, or the base containing the recorded landing. A rewrite that
squashed the merge away (trailer gone, content there) is a vanished landing too: landing it
again records it with a merge commit that changes nothing.

**What happens** to each vanished landing, in dependency order (a task before those that
depend on it): the task is claimed (only as the records were read: a teammate that got there
first keeps it) and written ``merging`` with the landing that vanished appended to its
``metadata.relanded`` (``council status`` and the report show it); a ``merge.vanished`` event
names the task, the landing commit, the base's tip now, where they part and the commits that
replaced it. Then, with ``landing.relanding: auto`` (the default), its kept branch (this
clone's, else the one published on the team's remote, else the branch side of the vanished
merge while git still has it, ``MergeQueue.restore_branch``) goes through the merge queue
again (``Lander.merge``: forecast holds, a waiting checkout, a resolve round on a conflict,
the team's write-ahead fence), never its CLI phases. With ``report``, when no kept branch is
left (``lost``), or after ``MAX_RELANDINGS`` relandings of one task (someone keeps resetting
the base), the task ends ``failed`` with outcome ``landing_vanished`` and an error naming both
commits, so the run ends failed and its exit code is not 0.
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Literal

import anyio

from orchestrator.errors import CouncilError
from orchestrator.events.merge import MergeVanished
from orchestrator.ids import derived_id
from orchestrator.merge.types import MergeResult
from orchestrator.merge.vanished import VanishedLanding
from orchestrator.models import ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lander import Lander
from orchestrator.scheduler.attempts.part import AttemptParts
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.task_meta import Relanding, TaskMeta
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["MAX_RELANDINGS", "VANISHED_OUTCOME", "Relander"]

log = logging.getLogger(__name__)

VANISHED_OUTCOME = "landing_vanished"  # metadata.outcome of a task whose landing is gone
MAX_RELANDINGS = 3
_FIRST_SEQ = -(10**9)  # relandings land before any attempt the dispatcher numbered
Action = Literal["reland", "report", "lost"]


class Relander:
    def __init__(
        self,
        run: RunContext,
        writes: AttemptWrites,
        inflight: InFlight,
        lander: Lander,
        states: Callable[[], Mapping[str, TaskState]],
        spawn: Callable[[list[Attempt]], None],
        parts: AttemptParts,
    ) -> None:
        self._run = run
        self._parts = parts  # which landings are not the queue's (``part.landed_elsewhere``)
        self._writes = writes
        self._inflight = inflight
        self._lander = lander
        self._states = states  # the task records as the scheduler last read them
        self._spawn = spawn  # runs ``reland(attempts)`` in the run's task group
        self._seq = _FIRST_SEQ
        # One check claims at a time, on the task as the store has it then: a claim by this
        # run's holder is adopted whatever version the claimer read (a lost answer's retry
        # needs that), so two checks at once (two landings, or a landing and the run's end)
        # both claimed one vanished landing and reported it twice (a loaded team run).
        self._claiming = anyio.Lock()
        # ``_landed_in``'s: what it found in the mapping it last looked at (held, so its id is
        # no other's), and the records read again since (None: look at every one).
        self._landed: dict[str, str] = {}
        self._landed_from: Mapping[str, TaskState] | None = None
        self._changes: set[str] | None = None
        # The base tip at which every landing in ``_landed`` but those in ``_unchecked`` was
        # found still there (None: none was): a landing made on that tip, or on a tip its
        # first-parent chain holds, needs only ``_unchecked`` looked at (``_check``).
        self._checked_at: str | None = None
        self._unchecked: set[str] = set()
        lander.on_landed = self.after_landing

    async def after_landing(self, merged: MergeResult) -> None:
        """The cheap check after a landing, at the base tip it read (module doc)."""
        await self._check(self._states(), at=merged.base_after, but=merged.task_id)

    def changed(self, changes: set[str] | None) -> None:
        """The ids of the task records a tick read again (None: all of them), as the
        dispatcher is told: what ``_landed_in`` looks at again."""
        if changes is None or self._changes is None:
            self._changes = None
        else:
            self._changes |= changes

    def _landed_in(self, states: Mapping[str, TaskState]) -> dict[str, str]:
        """The run's tasks the queue landed, with their merge commits, in the states the last
        tick read. Asked after every landing, of a run of 10,000 tasks most of them queued: kept
        from one tick to the next and looked at again only for the records a tick read again
        (``changed``), not worked out from every task per landing, which grew with the square
        of the run."""
        if states is not self._landed_from:
            if self._changes is None:
                self._landed = self._scan(states)
                self._checked_at = None
            else:
                for task_id in self._changes:
                    self._landed.pop(task_id, None)
                self._landed.update(
                    self._scan({t: states[t] for t in self._changes if t in states})
                )
                self._unchecked |= self._changes
            self._landed_from, self._changes = states, set()
        return self._landed

    def _scan(self, states: Mapping[str, TaskState]) -> dict[str, str]:
        return {
            task_id: state.merged_commit
            for task_id, state in states.items()
            if state.status == TaskStatus.DONE  # the cheapest test first
            and state.merged_commit
            and task_id in self._run.tasks
            and not self._parts.landed_elsewhere(state)  # a forge's merge: no Council-Task
        }

    async def at_end(self, states: Mapping[str, TaskState]) -> bool:
        """The check before the run ends: True when relandings were started (or a task was
        written meanwhile), so the run goes on. ``states`` is a fresh read: looked at whole."""
        self._changes = None
        return await self._check(states, at=None, but=None)

    async def _check(
        self, states: Mapping[str, TaskState], *, at: str | None, but: str | None
    ) -> bool:
        lending = self._run.services.merges.lending
        every = self._landed_in(states)
        # After a landing on the tip the last look found every landing still on (or on a tip
        # whose chain holds it): only the landings not looked at since can have vanished. The
        # look then costs what changed, not every landing of the run: after each landing of
        # a run of 10,000 tasks, that was the square of the run. A teammate's landing or a
        # reset changes the chain, and brings the whole look back.
        since = self._checked_at
        whole = at is None or since is None or not lending.still_on(since, at)
        looked = every if whole else {t: every[t] for t in self._unchecked if t in every}
        landed = {
            task_id: commit
            for task_id, commit in looked.items()
            if task_id != but and task_id not in self._inflight
        }
        if whole:
            self._checked_at, self._unchecked = None, set()
        if not landed:
            self._mark_checked(at, looked, but)
            return False
        try:
            gone = await lending.vanished(landed, at=at)
        except CouncilError as exc:
            # The look itself failed (the remote unreachable): the end-of-run look tries again.
            log.warning("cannot check that the landed tasks are still on the base: %s", exc)
            return False
        if not gone:
            self._mark_checked(at, looked, but)
            return False
        self._checked_at = None  # looked at whole next time
        attempts: list[Attempt] = []
        async with self._claiming:
            for found in sorted(gone, key=self._order()):
                state = await self._run.services.store.get_task_state(found.task_id)
                if (
                    state is None
                    or found.task_id in self._inflight
                    or state.status != TaskStatus.DONE
                    or state.merged_commit != found.commit
                ):
                    continue  # taken up meanwhile (another check, a teammate)
                attempt = await self._claim(state, found)
                if attempt is not None:
                    attempts.append(attempt)
        if attempts:
            self._spawn(attempts)
        return True

    def _mark_checked(self, at: str | None, looked: Mapping[str, str], but: str | None) -> None:
        """The landings of ``looked`` are on the base at ``at`` (none was found gone), but
        those in flight, which were not looked at: the next look after a landing on a tip
        whose chain holds ``at`` looks at those and at what changed since. ``but``, the landing
        just made on ``at``, is on it by its making."""
        if at is None:
            return
        self._checked_at = at
        self._unchecked = {t for t in looked if t != but and t in self._inflight}

    def _order(self) -> Callable[[VanishedLanding], int]:
        """Dependency order: a task's depth in its ``depends_on`` chain."""
        tasks = self._run.tasks
        depth: dict[str, int] = {}

        def of(task_id: str, seen: frozenset[str] = frozenset()) -> int:
            if task_id not in depth:
                task = tasks.get(task_id)
                above = [d for d in (task.depends_on if task else []) if d not in seen]
                depth[task_id] = 1 + max((of(d, seen | {task_id}) for d in above), default=-1)
            return depth[task_id]

        return lambda found: of(found.task_id)

    async def _claim(self, state: TaskState, found: VanishedLanding) -> Attempt | None:
        """Claim the task and record the vanished landing; the attempt that lands it again,
        or None (someone else has it, or it ends failed here)."""
        services = self._run.services
        config = services.config
        task_id = found.task_id
        meta = TaskMeta.read(state.metadata)
        history = list(meta.landing.relanded or [])
        branch = state.branch
        tip = None
        action: Action = "report"
        if config.landing.relanding == "auto" and len(history) < MAX_RELANDINGS:
            tip = (
                await services.merges.lending.restore_branch(branch, found.commit)
                if branch
                else None
            )
            action = "reland" if tip is not None else "lost"
        entry = Relanding(
            commit=found.commit,
            base=found.base,
            merge_base=found.merge_base,
            replaced_by=found.replaced_by,
            seen_at=utcnow().isoformat(),
            action=action,
        )
        meta.landing.relanded = [*history, entry]
        meta.landing.waiting = f"landing again: its landing {found.commit[:10]} vanished"
        claim = await services.store.acquire_claim(
            task_id,
            self._run.holder,
            config.scheduler.stale_threshold,
            {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta.dump()},
            expected_version=state.version,
        )
        if claim is None:
            return None  # written meanwhile (a teammate relands it, or it changed): theirs
        await self._run.events.emit(
            MergeVanished(
                task_id=task_id,
                commit=found.commit,
                base_branch=config.base_branch,
                base=found.base,
                merge_base=found.merge_base,
                replaced_by=found.replaced_by,
                kept_branch=branch if tip is not None else None,
                action=action,
            )
        )
        attempt = Attempt(
            task=self._run.tasks[task_id],
            adapter=state.adapter or config.default_adapter or "-",
            phase=None,
            seq=self._next_seq(),
            files=frozenset(self._run.tasks[task_id].files),
            token=claim.token,
            relanding=True,
        )
        attempt.session = SessionWorktree(
            session_id=derived_id(task_id, f"reland{secrets.token_hex(3)}", limit=59),
            cli=attempt.adapter if attempt.adapter != "-" else "council",
            task_id=task_id,
            path=Path(state.worktree) if state.worktree else config.repo,
            branch=branch or "",
            base_commit=found.merge_base or found.commit,
            created_at=utcnow(),
        )
        if action != "reland":
            meta.landing.waiting = None
            meta.retry.outcome = VANISHED_OUTCOME
            await self._writes.release(
                attempt,
                ClaimStatus.COMPLETED,
                {
                    "status": TaskStatus.FAILED,
                    "error": _error(found, config.base_branch, action, branch),
                    "finished_at": utcnow(),
                    "metadata": meta.dump(),
                },
            )
            return None
        self._inflight.track(attempt)
        return attempt

    async def reland(self, attempts: list[Attempt]) -> None:
        """Land each again through the merge queue, one after the other (dependency order)."""
        try:
            for attempt in attempts:
                await self._reland_one(attempt)
        finally:
            for attempt in attempts:
                self._inflight.end(attempt)
                attempt.finish()

    async def _reland_one(self, attempt: Attempt) -> None:
        if attempt.lost:
            return
        try:
            await self._lander.merge(attempt)
        except CouncilError as exc:
            # Not landed again: its work is still on the kept branch; the run ends failed.
            log.warning("task %s: landing it again failed: %s", attempt.key, exc)
            if attempt.token and not attempt.lost:
                await self._writes.release(
                    attempt,
                    ClaimStatus.COMPLETED,
                    {
                        "status": TaskStatus.FAILED,
                        "error": f"its landing vanished and landing it again failed: {exc}",
                        "finished_at": utcnow(),
                    },
                )

    def _next_seq(self) -> int:
        self._seq += 1
        return self._seq


def _error(found: VanishedLanding, base_branch: str, action: Action, branch: str | None) -> str:
    now = f"{base_branch} is now at {found.base}" if found.base else f"{base_branch} is gone"
    why = (
        f"its branch {branch or '(none recorded)'} is gone too: it cannot be landed again"
        if action == "lost"
        else "landing.relanding is report (or it vanished too often): not landed again"
    )
    return f"its landing {found.commit} is no longer on {base_branch} ({now}); {why}"
