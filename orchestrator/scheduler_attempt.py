"""One attempt at one task, from claim to merge: the half of the scheduler that runs in a task.

``AttemptLifecycle.run_attempt`` is started by the scheduler's dispatch with a slot already
taken, and goes:

1. **claim** the task (holder ``<host>:<pid>:<run id>``, lease = ``stale_threshold``) in the
   same write that marks it ``running`` and counts the attempt; someone else's live claim means
   the task is not ours to run and the attempt ends quietly;
2. **lock** the task's declared files for the attempt's session (all or none, short timeout);
   contention puts the task back in the queue untouched (no attempt counted as failed);
3. **worktree**: the task's previous one when it still exists (a retry or a resumed run
   continues the work already on its branch, so phases the workflow skips as completed are
   really there), else a new one forked from the base tip as it is now;
4. **workflow**: ``await workflow(TaskRun)``; ``task.timeout`` and ``stop()`` set the run's
   cancel event so the workflow commits what the CLI did and returns;
5. **settle** the result with the fencing token: cancelled on request (``scheduler_cancel``)
   → ``cancelled``, claim abandoned, worktree removed with its branch kept; ready → merge
   queue (held first while a forecast says it conflicts with an earlier in-flight branch), or
   for a council candidate ``merging`` with its result kept for the comparison
   (``scheduler_candidates``); cancelled by a stop → back to the queue, claim abandoned;
   anything else → ``RetryPolicy.decide``: retry later, park the adapter, or fail with the
   CLI's message.

Locks are released when the attempt ends (a candidate's, held for its whole council task, when
that task ends); the worktree is removed only when the base contains the branch tip (otherwise
it is kept for the next attempt, a resolve round or the user).
An attempt whose claim was lost (lease lapsed and swept) writes nothing more: the sweeper owns
the task now.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import anyio

from orchestrator.config_models import RunConfig, TaskConfig
from orchestrator.errors import CouncilError, LockError, StaleClaim, WorkspaceError
from orchestrator.events import Event
from orchestrator.locks import LockManager
from orchestrator.merge import MergeQueue
from orchestrator.merge_types import MergeResult, MergeStatus
from orchestrator.models import TERMINAL_TASK_STATUSES, ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.plugins import PluginHost
from orchestrator.retry import GiveUp, Park, Retry, RetryPolicy
from orchestrator.scheduler_cancel import cancelled_updates
from orchestrator.scheduler_candidates import (
    CANDIDATE_RESULT,
    COUNCIL_SUMMARY,
    council_summary,
    group_lock_owner,
)
from orchestrator.scheduler_capacity import Slots
from orchestrator.scheduler_queue import NOT_BEFORE, PARKED_ADAPTER, PARKED_UNTIL
from orchestrator.state.protocol import StateStore
from orchestrator.task_run import TaskRun, WorkflowFn, WorkflowResult, WorkflowStatus
from orchestrator.worktree_models import SessionWorktree
from orchestrator.worktrees import WorktreeManager

__all__ = ["Attempt", "AttemptLifecycle", "Services"]

log = logging.getLogger(__name__)

FAILURES = "failures"  # metadata: failed attempts so far (what RetryPolicy.decide counts)
WORKTREE = "worktree_session"  # metadata: the session id of the task's kept worktree
RESOLVE_ROUNDS = "resolve_rounds"  # metadata: conflicts answered by building again on the base
MAX_RESOLVE_ROUNDS = 1
USAGE = "usage"  # metadata: tokens and cost summed over attempts
_LOCK_TIMEOUT = 0.5
_MERGE_RECHECK = 0.5  # seconds between merges retried while the base's checkout is dirty


@dataclass
class Services:
    """What the scheduler works with; the ``Council`` facade builds and closes them."""

    config: RunConfig
    store: StateStore
    worktrees: WorktreeManager
    locks: LockManager
    merges: MergeQueue
    plugins: PluginHost
    log_dir: Path
    home_root: Path


@dataclass(eq=False)
class Attempt:
    """One attempt in flight, as this scheduler sees it."""

    task: TaskConfig
    adapter: str
    phase: str | None
    seq: int  # dispatch order: the earlier of two conflicting branches lands first
    files: frozenset[str]
    started: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)
    token: int = 0
    session: SessionWorktree | None = None
    lost: bool = False  # the claim lapsed: this attempt may not write any more
    timed_out: bool = False
    files_changed: frozenset[str] = frozenset()
    last_message: str = ""
    slot_free: bool = False  # the CLI work is over; the attempt is settling or merging
    group: str | None = None  # a council candidate: the council task it is a candidate of
    picking: bool = False  # the council step of a council task (compare, merge the winner)
    cancel_requested: bool = False  # someone asked for the task to be cancelled
    cancel: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)

    @property
    def key(self) -> str:
        return self.task.id

    @property
    def worktree_task(self) -> str:
        """The task id the worktree and branch are made for (a candidate's council task)."""
        return self.group or self.task.id

    def lock_owner(self, session_id: str) -> str:
        """Who the attempt's file locks are held by."""
        return group_lock_owner(self.group) if self.group else session_id

    def touches(self) -> frozenset[str]:
        return self.files | self.files_changed


class AttemptLifecycle:
    """The attempt half of ``Scheduler`` (which sets these attributes)."""

    services: Services
    workflow: WorkflowFn
    policy: RetryPolicy
    slots: Slots
    holder: str
    running: dict[str, Attempt]
    parked: dict[str, datetime]
    stopping: bool
    tasks: dict[str, TaskConfig]
    listeners: list[Callable[[Event], None]]

    def on_event(self, event: Event) -> None:
        """A workflow event: to the plugins' observers, then to every listener."""
        self.services.plugins.event(event)
        for listener in list(self.listeners):
            try:
                listener(event)
            except Exception:  # a listener must never break a run
                log.exception("event listener failed; ignored")

    # -- the whole attempt ----------------------------------------------------------------

    async def run_attempt(self, attempt: Attempt) -> None:
        """Run ``attempt`` from claim to settled (module doc); never raises a council error."""
        try:
            if not await self._setup(attempt):
                return
            result = await self._execute(attempt)
            self.slots.give_back(attempt.key)  # the CLI is done; a waiting merge holds no slot
            attempt.slot_free = True
            await self._settle(attempt, result)
        except (CouncilError, OSError) as exc:
            # The orchestrator's own step failed (git, store, disk): count it like a failed
            # attempt, so a persistent fault ends in `failed` rather than a respawn loop.
            log.warning("task %s: attempt failed in the orchestrator: %s", attempt.key, exc)
            failed = WorkflowResult(
                WorkflowStatus.FAILED, message=str(exc), retryable=True, outcome_kind="crashed"
            )
            with anyio.CancelScope(shield=True):
                await self._decide(attempt, failed)
        finally:
            self.slots.give_back(attempt.key)
            self.running.pop(attempt.key, None)
            with anyio.CancelScope(shield=True):
                if attempt.group is None:
                    await self._release_locks(attempt)
                else:
                    await self._release_group_if_over(attempt.group)
            attempt.finished.set()

    async def _setup(self, attempt: Attempt) -> bool:
        store, task = self.services.store, attempt.task
        state = await store.get_task_state(task.id)
        if state is None or self.stopping:
            return False
        claim = await store.acquire_claim(
            task.id,
            self.holder,
            self.services.config.scheduler.stale_threshold,
            {
                "status": TaskStatus.RUNNING,
                "attempt": state.attempt + 1,
                "adapter": attempt.adapter,
                "started_at": state.started_at or utcnow(),
                "current_phase": attempt.phase,
            },
        )
        if claim is None:
            return False  # someone else holds it; the sweeper or its holder settles it
        attempt.token = claim.token
        attempt.renewed = time.monotonic()
        session_id = str(state.metadata.get(WORKTREE) or _new_session_id(task.id))
        locks, owner = self.services.locks, attempt.lock_owner(session_id)
        wanted = sorted(attempt.files - {grant.path for grant in locks.held(owner)})
        try:
            if wanted:
                await locks.acquire_file_locks(owner, wanted, timeout=_LOCK_TIMEOUT)
            attempt.session = await self._worktree(session_id, attempt)
        except LockError as exc:
            await self._requeue(attempt, state, f"waiting for files: {exc}")
            return False
        await self._write(
            attempt,
            {
                "branch": attempt.session.branch,
                "worktree": str(attempt.session.path),
                "metadata": {**state.metadata, WORKTREE: attempt.session.session_id},
            },
        )
        await self._emit(
            "task.dispatched",
            {
                "task_id": task.id,
                "adapter": attempt.adapter,
                "attempt": state.attempt + 1,
                "branch": attempt.session.branch,
                "phase": attempt.phase,
            },
        )
        if self.stopping:
            return await self._requeue(attempt, None, "stopped")
        return True

    async def _worktree(self, session_id: str, attempt: Attempt) -> SessionWorktree:
        worktrees = self.services.worktrees
        try:
            kept = await worktrees.get_session(session_id)
        except WorkspaceError:
            return await worktrees.create_session_worktree(
                session_id, attempt.adapter, attempt.worktree_task
            )
        return await worktrees.recreate_session_worktree(kept)

    async def _execute(self, attempt: Attempt) -> WorkflowResult:
        assert attempt.session is not None
        services = self.services
        run = TaskRun(
            config=services.config,
            task=attempt.task,
            session=attempt.session,
            adapter=attempt.adapter,
            claim_token=attempt.token,
            store=services.store,
            worktrees=services.worktrees,
            locks=services.locks,
            plugins=services.plugins,
            log_dir=services.log_dir,
            home_root=services.home_root,
            cancel=attempt.cancel,
            on_event=lambda event: self._attempt_event(attempt, event),
            lock_owner=attempt.lock_owner(attempt.session.session_id),
        )
        async with anyio.create_task_group() as group:
            if attempt.task.timeout is not None:
                group.start_soon(self._watchdog, attempt, attempt.task.timeout)
            try:
                result = await self.workflow(run)
            except (CouncilError, OSError) as exc:
                result = WorkflowResult(
                    WorkflowStatus.FAILED, message=str(exc), retryable=True, outcome_kind="crashed"
                )
            group.cancel_scope.cancel()
        if attempt.timed_out and result.status != WorkflowStatus.READY_TO_MERGE:
            limit = attempt.task.timeout
            return WorkflowResult(
                WorkflowStatus.FAILED,
                phase=result.phase,
                message=f"task time limit of {limit:g}s reached",
                retryable=True,
                outcome_kind="timed_out",
                usage=result.usage,
            )
        return result

    async def _watchdog(self, attempt: Attempt, seconds: float) -> None:
        await anyio.sleep(seconds)
        attempt.timed_out = True
        attempt.cancel.set()

    def _attempt_event(self, attempt: Attempt, event: Event) -> None:
        phase = event.data.get("phase")
        if isinstance(phase, str) and phase != attempt.phase:
            attempt.phase = phase
            self.slots.move(attempt.key, phase)
        text = event.data.get("text") or event.data.get("message")
        if isinstance(text, str) and text:
            attempt.last_message = text[:200]
        self.on_event(event)

    # -- settling a result ----------------------------------------------------------------

    async def _settle(self, attempt: Attempt, result: WorkflowResult) -> None:
        if attempt.lost:
            return
        await self._add_usage(attempt, result)
        if attempt.cancel_requested:
            await self._cancelled(attempt)
        elif result.status == WorkflowStatus.READY_TO_MERGE and attempt.group is not None:
            await self._candidate_ready(attempt, result)
        elif result.status == WorkflowStatus.READY_TO_MERGE:
            attempt.files_changed = frozenset(result.files_changed)
            await self._merge(attempt, result)
        elif result.status == WorkflowStatus.CANCELLED and self.stopping:
            await self._requeue(attempt, None, "interrupted")
        else:
            await self._decide(attempt, result)

    async def _decide(self, attempt: Attempt, result: WorkflowResult) -> None:
        if attempt.lost or attempt.token == 0:
            return
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        failures = int(state.metadata.get(FAILURES, 0))
        if result.status != WorkflowStatus.PARKED and result.outcome_kind != "rate_limited":
            failures += 1
        decision = self.policy.decide(result, failures)
        meta = {**state.metadata, FAILURES: failures}
        now = utcnow()
        if isinstance(decision, Park):
            self.parked[attempt.adapter] = max(
                decision.until, self.parked.get(attempt.adapter, now)
            )
            meta |= {PARKED_UNTIL: decision.until.isoformat(), PARKED_ADAPTER: attempt.adapter}
            updates: dict[str, Any] = {"status": TaskStatus.PARKED, "error": result.message}
            await self._emit(
                "adapter.parked",
                {
                    "adapter": attempt.adapter,
                    "until": decision.until.isoformat(),
                    "task_id": attempt.key,
                    "message": result.message,
                },
            )
        elif isinstance(decision, Retry):
            meta[NOT_BEFORE] = (now + timedelta(seconds=decision.delay)).isoformat()
            meta.pop(PARKED_ADAPTER, None)
            updates = {"status": TaskStatus.QUEUED, "error": result.message}
            await self._emit(
                "task.retry",
                {
                    "task_id": attempt.key,
                    "delay": decision.delay,
                    "failures": failures,
                    "error": result.message,
                },
            )
        else:
            assert isinstance(decision, GiveUp)
            updates = {"status": TaskStatus.FAILED, "error": decision.reason, "finished_at": now}
            await self._emit("task.failed", {"task_id": attempt.key, "error": decision.reason})
        await self._release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})

    async def _cancelled(self, attempt: Attempt) -> None:
        """End the task ``cancelled`` on request: claim abandoned, the worktree removed (its
        work is committed; the branch, which the base lacks, is kept)."""
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        meta = dict(state.metadata)
        meta.pop(WORKTREE, None)
        updates = {**cancelled_updates(state), "metadata": meta}
        await self._release(attempt, ClaimStatus.ABANDONED, updates)
        await self._emit("task.cancelled", {"task_id": attempt.key, "branch": state.branch})
        if attempt.group is None:
            await self._release_locks(attempt)
        await self._retire_worktree(attempt)

    async def _candidate_ready(self, attempt: Attempt, result: WorkflowResult) -> None:
        """A council candidate passed: it waits, ``merging``, for the comparison."""
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        kept = {
            "commit": result.commit,
            "files_changed": list(result.files_changed),
            "message": result.message,
        }
        meta = {**state.metadata, CANDIDATE_RESULT: kept}
        updates = {"status": TaskStatus.MERGING, "current_phase": None, "metadata": meta}
        await self._release(attempt, ClaimStatus.COMPLETED, updates)
        await self._emit(
            "council.candidate_ready",
            {"task_id": attempt.group, "candidate": attempt.key, "adapter": attempt.adapter},
        )

    async def _release_group_if_over(self, group: str) -> None:
        """Once council task ``group`` has ended and none of its candidates runs any more:
        its summary shows how each candidate ended, and their shared file locks go."""
        if any(a.group == group or a.key == group for a in self.running.values()):
            return
        store = self.services.store
        state = await store.get_task_state(group)
        if state is not None and state.status not in TERMINAL_TASK_STATUSES:
            return
        await self.services.locks.release_all_session_locks(group_lock_owner(group))
        task = self.council_tasks().get(group)
        if state is None or task is None:
            return
        summary = state.metadata.get(COUNCIL_SUMMARY)
        winner = summary.get("winner") if isinstance(summary, dict) else None
        fresh = await council_summary(store, task, winner if isinstance(winner, str) else None)
        if fresh != summary:
            await store.update_task_state(
                group, {"metadata": {**state.metadata, COUNCIL_SUMMARY: fresh}}
            )

    def council_tasks(self) -> dict[str, TaskConfig]:
        """The council tasks of this run, by id."""
        return {task.id: task for task in self.tasks.values() if task.council}

    async def _retire_worktree(self, attempt: Attempt) -> None:
        if attempt.session is None:
            return
        try:
            await self.services.worktrees.remove_session_worktree(attempt.session)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of %s: %s", attempt.key, exc)

    async def _requeue(self, attempt: Attempt, state: TaskState | None, why: str) -> bool:
        """Give the task back to the queue as it was (nothing counted); False, for callers."""
        if attempt.token and not attempt.lost:
            await self._release(
                attempt, ClaimStatus.ABANDONED, {"status": TaskStatus.QUEUED, "current_phase": None}
            )
            await self._emit("task.requeued", {"task_id": attempt.key, "reason": why})
        return False

    # -- merging --------------------------------------------------------------------------

    async def _merge(self, attempt: Attempt, result: WorkflowResult) -> None:
        assert attempt.session is not None
        await self._write(attempt, {"status": TaskStatus.MERGING, "current_phase": None})
        await self._hold_for_forecast(attempt)
        while True:
            merged = await self.services.merges.merge(
                attempt.session.session_id, attempt.session.branch, task_id=attempt.key
            )
            if merged.status != MergeStatus.WAITING_FOR_CHECKOUT:
                break
            if self.stopping:
                await self._requeue(attempt, None, "stopped while waiting for the checkout")
                return
            if attempt.cancel_requested:
                await self._cancelled(attempt)
                return
            await anyio.sleep(max(_MERGE_RECHECK, self.services.config.scheduler.tick))
        await self._landed(attempt, merged)

    async def _landed(self, attempt: Attempt, merged: MergeResult) -> None:
        assert attempt.session is not None
        now = utcnow()
        if not merged.landed and await self._resolve_round(attempt, merged):
            return
        if merged.landed:
            updates: dict[str, Any] = {
                "status": TaskStatus.DONE,
                "merged_commit": merged.merge_commit or merged.branch_tip,
                "finished_at": now,
                "error": None,
            }
        else:
            paths = ", ".join(merged.conflicts) or "unknown paths"
            updates = {
                "status": TaskStatus.CONFLICT,
                "error": f"merge conflict in {paths}; branch {merged.branch} kept",
                "finished_at": now,
            }
        state = await self.services.store.get_task_state(attempt.key)
        meta = dict(state.metadata) if state is not None else {}
        meta["conflicts"] = list(merged.conflicts)
        if merged.tip_contained:
            meta.pop(WORKTREE, None)
        await self._release(attempt, ClaimStatus.COMPLETED, {**updates, "metadata": meta})
        await self._release_locks(attempt)
        if merged.tip_contained:
            try:
                await self.services.worktrees.remove_session_worktree(attempt.session)
            except WorkspaceError as exc:  # its work is on the base; only the directory stays
                log.warning("could not remove the worktree of %s: %s", attempt.key, exc)

    async def _resolve_round(self, attempt: Attempt, merged: MergeResult) -> bool:
        """Answer a merge conflict by running the task again on a new branch from the base as
        it is now (build and review run again; scout and plan are kept). The conflicting
        branch stays, and a rescue ref holds its tip once its worktree is gone, so nothing is
        lost. False when the task already had its resolve rounds: then it ends ``conflict``."""
        assert attempt.session is not None
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return False
        rounds = int(state.metadata.get(RESOLVE_ROUNDS, 0))
        if rounds >= MAX_RESOLVE_ROUNDS:
            return False
        paths = ", ".join(merged.conflicts) or "unknown paths"
        meta = {**state.metadata, RESOLVE_ROUNDS: rounds + 1, "conflicts": list(merged.conflicts)}
        meta.pop(WORKTREE, None)  # the next attempt forks a fresh worktree from the base
        await self._release(
            attempt,
            ClaimStatus.COMPLETED,
            {
                "status": TaskStatus.QUEUED,
                "current_phase": None,
                "error": f"merge conflict in {paths}; building again on the updated base",
                "metadata": meta,
            },
        )
        await self._release_locks(attempt)
        await self._emit(
            "merge.resolve_round",
            {
                "task_id": attempt.key,
                "paths": list(merged.conflicts),
                "kept_branch": merged.branch,
                "round": rounds + 1,
            },
            level="warning",
        )
        try:
            await self.services.worktrees.remove_session_worktree(attempt.session)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of %s: %s", attempt.key, exc)
        return True

    async def _hold_for_forecast(self, attempt: Attempt) -> None:
        """Wait for every earlier in-flight attempt whose branch would conflict with ours."""
        assert attempt.session is not None
        for other in sorted(self.running.values(), key=lambda a: a.seq):
            if other.seq >= attempt.seq or other.session is None:
                continue
            ours, theirs = attempt.touches(), other.touches()
            if ours and theirs and not ours & theirs:
                continue  # both known and disjoint: they cannot conflict
            forecast = await self.services.merges.forecast_conflicts(
                other.session.branch, attempt.session.branch
            )
            if not forecast.conflicts:
                continue
            await self._emit(
                "merge.forecast_conflict",
                {"task_id": attempt.key, "held_for": other.key, "paths": forecast.paths},
                level="warning",
            )
            await other.finished.wait()

    # -- store writes, all fenced ---------------------------------------------------------

    async def _write(self, attempt: Attempt, updates: dict[str, Any]) -> None:
        try:
            await self.services.store.update_task_state(
                attempt.key, updates, fencing_token=attempt.token
            )
        except StaleClaim:
            attempt.lost = True
            raise

    async def _release(
        self, attempt: Attempt, status: ClaimStatus, updates: dict[str, Any]
    ) -> None:
        try:
            await self.services.store.release_claim(attempt.key, attempt.token, status, updates)
        except StaleClaim:
            attempt.lost = True  # swept meanwhile: the sweeper has settled the task
            return
        attempt.token = 0

    async def _release_locks(self, attempt: Attempt) -> None:
        if attempt.session is not None:
            await self.services.locks.release_all_session_locks(attempt.session.session_id)

    async def _add_usage(self, attempt: Attempt, result: WorkflowResult) -> None:
        if result.usage is None:
            return
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        total = dict(state.metadata.get(USAGE) or {})
        for name, value in result.usage.model_dump().items():
            if value is not None:
                total[name] = (total.get(name) or 0) + value
        await self._write(attempt, {"metadata": {**state.metadata, USAGE: total}})

    async def _emit(self, kind: str, data: dict[str, Any], level: str = "info") -> None:
        await self.services.store.emit(Event(type=kind, data=data, level=level))


def _new_session_id(task_id: str) -> str:
    # Random, so a worktree a finished run kept for the same task id never collides.
    return f"{task_id[:52]}.{secrets.token_hex(3)}"
