"""Council mode in the scheduler: the candidates' records, and the step that picks and merges.

The candidates of a council task (``scheduler_candidates``) are dispatched like tasks, each
with its own slot (capacity applies to every candidate session), claim, worktree on
``council/<task>/<n>``, retries and parking. A candidate that fails for good ends ``failed``
and does not hold up the others. Once every candidate has settled (ready, or ended), the
scheduler dispatches the **council step** of the council task (``run_council_step``), which
takes a slot for the judging CLI (phase ``council``) and:

1. claims the council task (``merging``, phase ``council``);
2. with no ready candidate, fails the task, listing why each candidate ended;
3. otherwise asks ``pick_best`` to compare the ready ones (one alone wins without a judge);
4. merges only the winner's branch, under the council task's own id (its ``Council-Task``
   trailer), waiting while the base's checkout is dirty like any merge;
5. settles: the council task ``done`` (or ``conflict``: no resolve round for a council task,
   every branch is kept), with ``adapter`` and ``branch`` the winner's and
   ``metadata.council`` listing the candidates and the winner; the winner candidate ``done``;
   the other ready candidates ``cancelled`` ("not chosen"). Their worktrees are removed and
   their branches kept (never merged, never deleted); the winner's worktree is removed once
   the base contains its tip.

A stop during the step puts the council task back in the queue (the step runs again on
resume; the merge queue answers ``already_merged`` if the winner had landed); a cancel request
ends it and every candidate ``cancelled``. A fault of the orchestrator's own (git, store) is
counted against the council task like a failed attempt and retried. The candidates' shared
file locks are released when the council task ends.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import anyio

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, WorkspaceError
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.runner.cli_runs import CliRunBook
from orchestrator.scheduler.attempt_runner import (
    _MERGE_RECHECK,
    WORKTREE,
    Attempt,
    AttemptLifecycle,
)
from orchestrator.scheduler.cancel import cancelled_updates
from orchestrator.scheduler.candidates import (
    CANDIDATE_RESULT,
    COUNCIL_SUMMARY,
    candidate_ready,
    candidates_of,
    council_summary,
)
from orchestrator.state.session_rules import recovery_updates
from orchestrator.workflow.best_of import COUNCIL_PHASE, CandidateResult, pick_best
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["CouncilLifecycle"]

log = logging.getLogger(__name__)

Member = tuple[TaskConfig, TaskState]


class CouncilLifecycle(AttemptLifecycle):
    """The council half of ``Scheduler`` (which sets ``session_id`` and the rest)."""

    session_id: str | None

    # -- candidate records ----------------------------------------------------------------

    async def prepare_candidates(self, tasks: Iterable[TaskConfig], *, resuming: bool) -> None:
        """Give every unfinished council task's candidates a record in this session: fresh
        ones for a new run, recovered ones (left running by a dead orchestrator: back to the
        queue) when resuming."""
        store, now = self.services.store, utcnow()
        for task in tasks:
            if not task.council:
                continue
            parent = await store.get_task_state(task.id)
            if parent is None or parent.status in TERMINAL_TASK_STATUSES:
                continue
            for member in candidates_of(task):
                state = await store.get_task_state(member.id)
                if resuming and state is not None and state.session_id == self.session_id:
                    fix = recovery_updates(state, now, force=True)
                    if fix:
                        await store.update_task_state(member.id, fix)
                    continue
                fresh = TaskState(
                    task_id=member.id, session_id=self.session_id, priority=task.priority
                )
                await store.update_task_state(member.id, fresh.model_dump(exclude={"version"}))

    async def add_candidate_states(
        self, tasks: Iterable[TaskConfig], states: dict[str, TaskState]
    ) -> None:
        """Add the candidates of the unfinished council tasks to ``states``."""
        for task in tasks:
            parent = states.get(task.id)
            if not task.council or parent is None or parent.status in TERMINAL_TASK_STATUSES:
                continue
            for member in candidates_of(task):
                state = await self.services.store.get_task_state(member.id)
                if state is not None:
                    states[member.id] = state

    async def members(self, task: TaskConfig) -> list[Member]:
        found = []
        for member in candidates_of(task):
            state = await self.services.store.get_task_state(member.id)
            if state is not None:
                found.append((member, state))
        return found

    # -- the council step -----------------------------------------------------------------

    async def run_council_step(self, attempt: Attempt) -> None:
        """Compare the candidates of ``attempt.task`` and merge the winner (module doc)."""
        try:
            if await self._claim_step(attempt):
                await self._pick_and_merge(attempt)
        except (CouncilError, OSError) as exc:
            await self._failed_in_orchestrator(attempt, exc)
        finally:
            self.slots.give_back(attempt.key)
            self.running.pop(attempt.key, None)
            with anyio.CancelScope(shield=True):
                await self._release_group_if_over(attempt.key)
            attempt.finished.set()

    async def _claim_step(self, attempt: Attempt) -> bool:
        store = self.services.store
        state = await store.get_task_state(attempt.key)
        if state is None or self.stopping or state.status in TERMINAL_TASK_STATUSES:
            return False
        claim = await store.acquire_claim(
            attempt.key,
            self.holder,
            self.services.config.scheduler.stale_threshold,
            {
                "status": TaskStatus.MERGING,
                "attempt": state.attempt + 1,
                "adapter": attempt.adapter,
                "started_at": state.started_at or utcnow(),
                "current_phase": COUNCIL_PHASE,
            },
        )
        if claim is None:
            return False
        attempt.token = claim.token
        await self._emit("council.comparing", {"task_id": attempt.key, "judge": attempt.adapter})
        return True

    async def _pick_and_merge(self, attempt: Attempt) -> None:
        task, services = attempt.task, self.services
        members = await self.members(task)
        ready = await self._ready_candidates(members)
        if not ready:
            await self._no_candidate(attempt, members)
            return
        winner_id = await pick_best(
            services.config,
            task,
            [candidate for _, candidate in ready],
            worktrees=services.worktrees,
            plugins=services.plugins,
            home_root=services.home_root,
            log_dir=services.log_dir,
            adapter=attempt.adapter,
            cancel=attempt.cancel,
            on_event=lambda event: self._attempt_event(attempt, event),
            watch=CliRunBook(services.store, task.id, COUNCIL_PHASE),
        )
        self.slots.give_back(attempt.key)  # the judge is done; the merge holds no slot
        attempt.slot_free = True
        if await self._interrupted(attempt):
            return
        winner = next(m for m, c in ready if c.session.session_id == winner_id)
        chosen = next(c for m, c in ready if m is winner)
        await self._emit(
            "council.winner",
            {"task_id": task.id, "candidate": winner.id, "adapter": chosen.adapter},
        )
        merged = await self._merge_winner(attempt, chosen)
        if merged is not None:
            await self._settle_council(attempt, members, ready, winner, merged)

    async def _ready_candidates(
        self, members: list[Member]
    ) -> list[tuple[TaskConfig, CandidateResult]]:
        ready = []
        for member, state in members:
            if not candidate_ready(state):
                continue
            kept, session_id = state.metadata[CANDIDATE_RESULT], state.metadata.get(WORKTREE)
            if not isinstance(session_id, str):
                log.warning("candidate %s is ready but names no worktree", member.id)
                continue
            try:
                session = await self.services.worktrees.get_session(session_id)
            except WorkspaceError as exc:
                log.warning("candidate %s has no worktree any more: %s", member.id, exc)
                continue
            result = WorkflowResult(
                WorkflowStatus.READY_TO_MERGE,
                message=str(kept.get("message") or ""),
                commit=kept.get("commit"),
                files_changed=list(kept.get("files_changed") or []),
            )
            ready.append((member, CandidateResult(session, member.adapters[0], result)))
        return ready

    async def _interrupted(self, attempt: Attempt) -> bool:
        """A stop or a cancel request came while the judge ran: never merge then."""
        if attempt.cancel_requested:
            await self.cancel_council(attempt.task, attempt)
            return True
        if self.stopping:
            await self._requeue(attempt, None, "stopped during the council step")
            return True
        return False

    async def _merge_winner(self, attempt: Attempt, chosen: CandidateResult) -> MergeResult | None:
        session = chosen.session
        while True:
            merged = await self.services.merges.merge(
                session.session_id, session.branch, task_id=attempt.key
            )
            if merged.status != MergeStatus.WAITING_FOR_CHECKOUT:
                return merged
            if await self._interrupted(attempt):
                return None
            await anyio.sleep(max(_MERGE_RECHECK, self.services.config.scheduler.tick))

    # -- settling -------------------------------------------------------------------------

    async def _settle_council(
        self,
        attempt: Attempt,
        members: list[Member],
        ready: list[tuple[TaskConfig, CandidateResult]],
        winner: TaskConfig,
        merged: MergeResult,
    ) -> None:
        store, now = self.services.store, utcnow()
        chosen = next(c for m, c in ready if m is winner)
        branch = chosen.session.branch
        commit = merged.merge_commit or merged.branch_tip
        if merged.landed:
            outcome: dict[str, Any] = {
                "status": TaskStatus.DONE,
                "current_phase": None,
                "merged_commit": commit,
                "error": None,
            }
        else:
            paths = ", ".join(merged.conflicts) or "unknown paths"
            outcome = {
                "status": TaskStatus.CONFLICT,
                "error": f"merge conflict in {paths}; branch {branch} kept",
            }
        winner_state = next(s for m, s in members if m is winner)
        meta = dict(winner_state.metadata)
        if merged.tip_contained:
            meta.pop(WORKTREE, None)
        await store.update_task_state(winner.id, {**outcome, "finished_at": now, "metadata": meta})
        for member, candidate in ready:
            if member is not winner:
                why = f"not chosen: {winner.id} ({chosen.adapter}) won"
                await self._end_candidate(member.id, why, candidate.session.session_id)
        state = await store.get_task_state(attempt.key)
        parent_meta = dict(state.metadata) if state is not None else {}
        parent_meta[COUNCIL_SUMMARY] = await council_summary(
            self.services.store, attempt.task, winner.id
        )
        parent_meta["conflicts"] = list(merged.conflicts)
        await self._release(
            attempt,
            ClaimStatus.COMPLETED,
            {
                **outcome,
                "finished_at": now,
                "adapter": chosen.adapter,
                "branch": branch,
                "metadata": parent_meta,
            },
        )
        if merged.tip_contained:
            await self._remove_worktree(chosen.session.session_id)

    async def _no_candidate(self, attempt: Attempt, members: list[Member]) -> None:
        reasons = "; ".join(
            f"{m.id} ({m.adapters[0]}) {s.status}: {s.error or 'no result'}" for m, s in members
        )
        state = await self.services.store.get_task_state(attempt.key)
        meta = dict(state.metadata) if state is not None else {}
        meta[COUNCIL_SUMMARY] = await council_summary(self.services.store, attempt.task, None)
        error = f"no candidate passed its checks: {reasons}"
        updates = {"status": TaskStatus.FAILED, "error": error, "finished_at": utcnow()}
        await self._release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})
        await self._emit("task.failed", {"task_id": attempt.key, "error": error})

    async def cancel_council(self, task: TaskConfig, step: Attempt | None = None) -> bool:
        """Cancel council task ``task`` and its candidates; True once all of them ended
        (running candidates end when their attempts do)."""
        ended = True
        for member, state in await self.members(task):
            running = self.running.get(member.id)
            if running is not None:
                running.cancel_requested = True
                running.cancel.set()
                ended = False
            elif state.status not in TERMINAL_TASK_STATUSES:
                worktree = state.metadata.get(WORKTREE)
                await self._end_candidate(member.id, "cancelled on request", worktree)
        store = self.services.store
        parent = await store.get_task_state(task.id)
        if parent is None:
            return ended
        state = parent
        if state.status in TERMINAL_TASK_STATUSES and not (step is not None and step.token):
            if state.status != TaskStatus.CANCELLED:
                await self._emit(
                    "task.cancel_too_late", {"task_id": task.id, "status": state.status}
                )
            return ended
        meta = {
            **state.metadata,
            COUNCIL_SUMMARY: await council_summary(self.services.store, task, None),
        }
        updates = {**cancelled_updates(state), "metadata": meta}
        if step is not None and step.token:
            await self._release(step, ClaimStatus.ABANDONED, updates)
        else:
            await store.update_task_state(task.id, updates)
        await self._emit("task.cancelled", {"task_id": task.id})
        return ended

    async def _end_candidate(self, task_id: str, why: str, worktree: object) -> None:
        """A candidate that will never be merged ends ``cancelled``; its branch is kept."""
        store = self.services.store
        state = await store.get_task_state(task_id)
        if state is None:
            return
        meta = dict(state.metadata)
        meta.pop(WORKTREE, None)
        await store.update_task_state(task_id, {**cancelled_updates(state, why), "metadata": meta})
        if isinstance(worktree, str) and worktree:
            await self._remove_worktree(worktree)

    async def _remove_worktree(self, session_id: str) -> None:
        try:
            await self.services.worktrees.remove_session_worktree(session_id)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of session %s: %s", session_id, exc)
