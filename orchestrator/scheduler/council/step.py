"""The council step: compare a council task's candidates and merge the winner.

The candidates of a council task (``candidates``) are dispatched like tasks, each with its own
slot (capacity applies to every candidate session), claim, worktree on ``council/<task>/<n>``,
retries and parking. A candidate that fails for good ends ``failed`` and does not hold up the
others. Once every candidate has settled (ready, or ended), the dispatcher launches this step,
which takes a slot for the judging CLI (phase ``council``) and:

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

The winner's work holding a secret the run knows (the merge queue's gate:
``SecretInHistory``) ends the council task ``failed``, never retried.

A stop during the step puts the council task back in the queue (the step runs again on
resume; the merge queue answers ``already_merged`` if the winner had landed); a cancel request
ends it and every candidate ``cancelled``. A fault of the orchestrator's own (git, store) is
counted against the council task like a failed attempt and retried. The candidates' shared
file locks are released when the council task ends.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

import anyio

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, SecretInHistory, StaleClaim, WorkspaceError
from orchestrator.events.council_mode import CouncilComparing, CouncilWinner
from orchestrator.events.tasks import TaskFailed
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskStatus, utcnow
from orchestrator.runner.cli_runs import CliRunBook
from orchestrator.scheduler.attempts.attempt import MERGE_RECHECK, Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lifecycle import Stage
from orchestrator.scheduler.attempts.settler import Settler
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.candidates import (
    candidate_ready,
    council_summary,
)
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.closing import CouncilClosing
from orchestrator.scheduler.council.members import CouncilMembers, Member
from orchestrator.spend.gate import SpendGate
from orchestrator.state.transactions import transaction
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.best_of import COUNCIL_PHASE, CandidateResult, pick_best
from orchestrator.workflow.task_run import WorkflowResult, WorkflowStatus

__all__ = ["CouncilStep"]

log = logging.getLogger(__name__)

Ready = list[tuple[TaskConfig, CandidateResult]]


class CouncilStep:
    def __init__(
        self,
        run: RunContext,
        inflight: InFlight,
        writes: AttemptWrites,
        members: CouncilMembers,
        closing: CouncilClosing,
        settler: Settler,
        spend: Callable[[], SpendGate | None] = lambda: None,
    ) -> None:
        self._run = run
        self._spend = spend
        self._inflight = inflight
        self._writes = writes
        self._members = members
        self._closing = closing
        self._settler = settler

    async def run(self, attempt: Attempt) -> None:
        """Compare the candidates of ``attempt.task`` and merge the winner (module doc)."""
        try:
            if await self._claim(attempt):
                attempt.move(Stage.RUNNING)  # its judge compares the candidates
                await self._pick_and_merge(attempt)
        except SecretInHistory as exc:  # the winner's work held a secret: never landed
            await self._settler.secret_found(attempt, exc)
        except (CouncilError, OSError) as exc:
            await self._settler.failed_in_orchestrator(attempt, exc)
        finally:
            self._inflight.end(attempt)
            with anyio.CancelScope(shield=True):
                await self._closing.release_if_over(attempt.key)
            attempt.finish()

    async def _claim(self, attempt: Attempt) -> bool:
        store = self._run.services.store
        state = await store.get_task_state(attempt.key)
        if state is None or self._run.stopping or state.status in TERMINAL_TASK_STATUSES:
            return False
        claim = await store.acquire_claim(
            attempt.key,
            self._run.holder,
            self._run.services.config.scheduler.stale_threshold,
            {
                "status": TaskStatus.MERGING,
                "attempt": state.attempt + 1,
                "adapter": attempt.adapter,
                "started_at": state.started_at or utcnow(),
                "current_phase": COUNCIL_PHASE,
            },
            expected_version=state.version,
        )
        if claim is None:
            return False
        attempt.token = claim.token
        attempt.number = state.attempt + 1
        await self._run.events.emit(CouncilComparing(task_id=attempt.key, judge=attempt.adapter))
        return True

    async def _pick_and_merge(self, attempt: Attempt) -> None:
        task, services = attempt.task, self._run.services
        members = await self._members.members(task)
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
            on_event=self._inflight.listener(attempt, self._run.events.on_event),
            watch=CliRunBook(services.store, task.id, COUNCIL_PHASE),
            spend=self._spend(),
        )
        self._inflight.cli_done(attempt)  # the judge is done; the merge holds no slot
        if await self._interrupted(attempt):
            return
        winner = next(m for m, c in ready if c.session.session_id == winner_id)
        chosen = next(c for m, c in ready if m is winner)
        await self._run.events.emit(
            CouncilWinner(task_id=task.id, candidate=winner.id, adapter=chosen.adapter)
        )
        merged = await self._merge_winner(attempt, chosen)
        if merged is not None:
            await self._settle(attempt, members, ready, winner, merged)

    async def _ready_candidates(self, members: list[Member]) -> Ready:
        ready = []
        for member, state in members:
            if not candidate_ready(state):
                continue
            typed = TaskMeta.read(state.metadata)
            kept = typed.council.candidate or {}  # there: ``candidate_ready``
            session_id = typed.worktree.session
            if not isinstance(session_id, str):
                log.warning("candidate %s is ready but names no worktree", member.id)
                continue
            try:
                session = await self._run.services.worktrees.get_session(session_id)
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
            await self._members.cancel(attempt.task, attempt)
            return True
        if self._run.stopping:
            await self._writes.requeue(attempt, "stopped during the council step")
            return True
        return False

    async def _merge_winner(self, attempt: Attempt, chosen: CandidateResult) -> MergeResult | None:
        session, services = chosen.session, self._run.services
        while True:
            merged = await services.merges.merge(
                session.session_id, session.branch, task_id=attempt.key
            )
            if merged.status != MergeStatus.WAITING_FOR_CHECKOUT:
                attempt.waiting = ""
                return merged
            attempt.waiting = merged.message  # the live view says why it waits
            if await self._interrupted(attempt):
                return None
            await anyio.sleep(max(MERGE_RECHECK, services.config.scheduler.tick))

    async def _settle(
        self,
        attempt: Attempt,
        members: list[Member],
        ready: Ready,
        winner: TaskConfig,
        merged: MergeResult,
    ) -> None:
        store, now = self._run.services.store, utcnow()
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
        meta = TaskMeta.read(winner_state.metadata)
        if merged.tip_contained:
            meta.worktree.session = None
        ends: dict[str, dict[str, Any]] = {
            winner.id: {**outcome, "finished_at": now, "metadata": meta.dump()}
        }
        losers: list[str] = []
        for member, candidate in ready:
            if member is not winner:
                why = f"not chosen: {winner.id} ({chosen.adapter}) won"
                updates = await self._members.ended_candidate(member.id, why)
                if updates is not None:
                    ends[member.id] = updates
                    losers.append(candidate.session.session_id)
        state = await store.get_task_state(attempt.key)
        parent_meta = TaskMeta.read(state.metadata if state is not None else {})
        summary = await council_summary(store, attempt.task, winner.id)
        for entry in summary["candidates"]:  # as they will stand once this is written
            end = ends.get(entry["task_id"])
            if end is not None:
                entry |= {"status": str(end["status"]), "error": end.get("error")}
        parent_meta.council.council = summary
        parent_meta.retry.conflicts = list(merged.conflicts)
        settled = {
            **self._writes.where(attempt),
            **outcome,
            "finished_at": now,
            "adapter": chosen.adapter,
            "branch": branch,
            "metadata": parent_meta.dump(),
        }
        # The council task, its winner and the candidates not chosen end in one transaction:
        # a crash part-way used to leave the winner ended while the others still waited, and
        # the step, run again on resume, would then compare only those and merge a loser.
        # The council task's write is fenced by the step's claim, so a step swept meanwhile
        # writes nothing at all.
        try:
            async with transaction(store) as txn:
                txn.update_task(attempt.key, settled, fencing_token=attempt.token)
                for task_id, updates in ends.items():
                    txn.update_task(task_id, updates)
        except StaleClaim:
            attempt.lose()  # swept meanwhile: the sweeper has settled the task
            return
        # The claim goes too (the outcome is already written, so a crash before this line
        # leaves an ended task whose claim simply lapses).
        await self._writes.release(attempt, ClaimStatus.COMPLETED, settled)
        for worktree in losers:
            await self._members.remove_candidate_worktree(worktree)
        if merged.tip_contained:
            session_id = chosen.session.session_id
            await self._writes.remove_worktree(session_id, f"session {session_id}")

    async def _no_candidate(self, attempt: Attempt, members: list[Member]) -> None:
        reasons = "; ".join(
            f"{m.id} ({m.adapters[0]}) {s.status}: {s.error or 'no result'}" for m, s in members
        )
        store = self._run.services.store
        state = await store.get_task_state(attempt.key)
        typed = TaskMeta.read(state.metadata if state is not None else {})
        typed.council.council = await council_summary(store, attempt.task, None)
        meta = typed.dump()
        error = f"no candidate passed its checks: {reasons}"
        updates = {"status": TaskStatus.FAILED, "error": error, "finished_at": utcnow()}
        await self._writes.release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})
        await self._run.events.emit(TaskFailed(task_id=attempt.key, error=error))
