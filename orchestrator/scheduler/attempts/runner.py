"""One attempt at one task, from claim to settled.

``AttemptRunner.run`` is started by the dispatcher with a slot already taken, and goes:

1. **claim** the task (holder ``<host>:<pid>:<run id>``, lease = ``stale_threshold``) in the
   same write that marks it ``running``, counts the attempt and names the worktree's session
   (so a crash after the worktree is made still finds it); someone else's live claim means
   the task is not ours to run and the attempt ends quietly;
2. **lock** the task's declared files for the attempt's session (all or none, short timeout);
   contention puts the task back in the queue untouched (no attempt counted as failed); once
   they are held (and the worktree made), the session context says so (``session_context``),
   and the files the workflow reports on the way (``TaskRun.on_files``) are added to it;
3. **worktree**: the task's previous one when it still exists (a retry or a resumed run
   continues the work already on its branch, so phases the workflow skips as completed are
   really there), else a new one forked from the base tip as it is now;
4. **workflow**: ``await workflow(TaskRun)``; ``task.timeout`` and ``stop()`` set the run's
   cancel event so the workflow commits what the CLI did and returns;
5. **settle** the result with the fencing token (``settler``): cancelled on request →
   ``cancelled``, claim abandoned, worktree removed with its branch kept; ready → the merge
   queue (``lander``), or for a council candidate ``merging`` with its result kept for the
   comparison; cancelled by a stop → back to the queue, claim abandoned; anything else →
   ``RetryPolicy.decide``: retry later, park the adapter, or fail with the CLI's message. A
   full file system is nobody's attempt failing: its error (``OutOfSpace``, or the store's
   ``StateWriteError``) stops the run where it stands, nothing counted as failed, for
   ``council resume`` once there is space. So do the orchestrator's own files needing a
   person's repair (``errors.needs_repair``: a damaged record, a refused state write, a lock
   file nobody holds that cannot be used): the error names the file and what to do, then
   ``council resume``; requeueing the task instead would dispatch it forever.

Locks, and the session context with them, are released when the attempt ends (a candidate's,
held for its whole council task, when that task ends); the worktree is removed only when the
base contains the branch tip (otherwise it is kept for the next attempt, a resolve round or the
user). An attempt whose claim was lost (lease lapsed and swept) writes nothing more: the
sweeper owns the task now.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Awaitable, Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

import anyio

from orchestrator.coordination.tools_later import ToolsLater
from orchestrator.errors import (
    CouncilError,
    LockError,
    RecordNotFound,
    StoreUnavailable,
    WorkspaceError,
    needs_repair,
    stops_the_run,
)
from orchestrator.events.tasks import TaskAlreadyMerged, TaskDispatched
from orchestrator.ids import derived_id
from orchestrator.models import (
    TERMINAL_TASK_STATUSES,
    ClaimStatus,
    TaskState,
    TaskStatus,
    utcnow,
)
from orchestrator.sandbox.commands import SessionSide
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.lifecycle import Stage
from orchestrator.scheduler.attempts.part import AttemptParts
from orchestrator.scheduler.attempts.settler import Settler
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.spend.gate import SpendGate
from orchestrator.state.carried import Carrier
from orchestrator.state.claim_rules import ClaimUpdatesTold
from orchestrator.task_meta import TaskMeta
from orchestrator.workflow.task_run import TaskRun, WorkflowFn, WorkflowResult, WorkflowStatus
from orchestrator.worktrees.models import SessionWorktree

if TYPE_CHECKING:
    from orchestrator.coordination.session_tools import SessionTools

__all__ = ["AttemptRunner"]

log = logging.getLogger(__name__)

LOCK_TIMEOUT = 0.5  # seconds to wait for a task's declared files before it goes back


class AttemptRunner:
    def __init__(
        self,
        run: RunContext,
        workflow: WorkflowFn,
        inflight: InFlight,
        writes: AttemptWrites,
        settler: Settler,
        candidate_ended: Callable[[str], Awaitable[None]],
        parts: AttemptParts | None = None,
        spend: Callable[[], SpendGate | None] = lambda: None,
    ) -> None:
        self._run = run
        self._spend = spend  # the run's spend gate, once the run has a session
        self._workflow = workflow
        self._inflight = inflight
        self._writes = writes
        self._settler = settler
        # A council candidate ended: its council task may now be over (``CouncilMembers``).
        self._candidate_ended = candidate_ended
        # The run's features at the attempt's points (``part``): in a team a fresh base,
        # published branches, take-overs; the radar told of each phase commit; pull requests.
        self._parts = parts or AttemptParts()

    async def run(self, attempt: Attempt) -> None:
        """Run ``attempt`` from claim to settled (module doc); never raises a council error."""
        try:
            if not await self._setup(attempt):
                return
            attempt.move(Stage.RUNNING)
            result = await self._execute(attempt)
            if result.status == WorkflowStatus.READY_TO_MERGE:
                # The CLI is done; a merge that has to wait holds no slot. Any other result
                # keeps its slot until it is settled: freed earlier, the next dispatch could
                # pick the adapter this very result is about to park.
                self._inflight.cli_done(attempt)
            await self._settler.settle(attempt, result)
        except StoreUnavailable as exc:
            _unrecorded(attempt, exc)
        except (CouncilError, OSError) as exc:
            try:
                await self._settler.failed_in_orchestrator(attempt, exc)
            except StoreUnavailable as down:
                _unrecorded(attempt, down)
        finally:
            self._inflight.end(attempt)
            with anyio.CancelScope(shield=True):
                try:
                    if self._run.killed and attempt.token and not attempt.lost:
                        # Killed where it stood (a second Ctrl-C): the user's stop is no
                        # attempt at the work, as a graceful one is not. Its worktree stays
                        # for the next attempt, which `resume` starts.
                        await self._writes.requeue(attempt, "killed by the user")
                    if attempt.group is None:
                        await self._writes.release_locks(attempt)
                    else:
                        await self._candidate_ended(attempt.group)
                    await self._parts.ended(attempt)
                except StoreUnavailable as exc:
                    _unrecorded(attempt, exc)
            attempt.finish()

    async def _setup(self, attempt: Attempt) -> bool:
        services, task = self._run.services, attempt.task
        store = services.store
        # The task is read and claimed in one store call (one worker-thread call, one
        # transaction): the claim's updates are made from the task as the store finds it
        # under the claim's lock, and none are made (no claim) when it ended meanwhile
        # (cancelled by another process, say; in a team, run or ended by another
        # workstation, whose view of the queue lags a little behind) or the run is stopping.
        found: list[tuple[TaskState, str]] = []  # the task as found, the session id chosen

        def updates(state: TaskState) -> dict[str, Any] | None:
            if self._run.stopping or state.status in TERMINAL_TASK_STATUSES:
                return None
            kept = TaskMeta.read(state.metadata).worktree.session
            # The worktree's session id goes into the claim write, before the worktree
            # exists: a crash after its creation still finds it (the next attempt reuses it),
            # and no second write is needed once it is made. Its branch and path are written
            # by the workflow's first phase record and by whatever write settles the attempt.
            session_id = str(kept or _new_session_id(task.id))
            found.append((state, session_id))
            return {
                "status": TaskStatus.RUNNING,
                "attempt": state.attempt + 1,
                "adapter": attempt.adapter,
                "started_at": state.started_at or utcnow(),
                "current_phase": attempt.phase,
                "metadata": _with_session(state, session_id),
            }

        # The task the claim wrote, handed back by its call: the tick's view takes it as read.
        told = ClaimUpdatesTold(updates, self._run.wrote)
        # Shielded with the claim's token taken: a kill landing just as the write returns
        # must still find the claim to give back uncounted (``run``'s ``finally``).
        with anyio.CancelScope(shield=True):
            try:
                claim = await store.acquire_claim(
                    task.id, self._run.holder, services.config.scheduler.stale_threshold, told
                )
            except RecordNotFound:
                return False  # gone meanwhile
            if claim is not None:
                attempt.token = claim.token
                attempt.number = found[-1][0].attempt + 1
        if claim is None:
            return False  # ended, stopping, or someone else holds it (the sweeper settles it)
        state, session_id = found[-1]  # the task as claimed, before the claim's write
        kept = TaskMeta.read(state.metadata).worktree.session
        attempt.note = _retry_note(state)
        attempt.phases = dict(state.phases)  # the claim wrote none of them
        await self._parts.starting(attempt, state)
        attempt.renewed = time.monotonic()
        if state.attempt > 0 and await self._landed_before(attempt):
            return False
        reason = await self._parts.claimed(attempt)
        if reason is not None:
            return await self._writes.requeue(attempt, f"waiting for files: {reason}")
        if self._run.stopping:
            # Stopped while it was claimed: back to the queue before its locks and worktree
            # are taken (a worktree is git's work, seconds under load, that the stop would
            # wait for and throw away). The claim wrote its worktree's session id, as a
            # crash here leaves it: the next attempt makes that worktree.
            return await self._writes.requeue(attempt, "stopped")
        locks, owner = services.locks, attempt.lock_owner(session_id)
        if not kept and attempt.group is None:  # its own session, drawn just now
            locks.fresh(owner)
        try:
            await locks.acquire_missing(owner, attempt.files, timeout=LOCK_TIMEOUT)
            attempt.session = await self._worktree(session_id, attempt, state, new=not kept)
            # Made just now at the base, by checkout alone: nothing has run in it yet.
            attempt.fresh_worktree = not kept and not services.config.worktrees.setup
        except LockError as exc:
            if needs_repair(exc):
                raise  # a lock file nobody holds cannot be used: waiting would never end
            await self._writes.requeue(attempt, f"waiting for files: {exc}")
            return False
        await self._writes.contexts.started(attempt, owner, new=not kept)
        await self._run.events.emit(
            TaskDispatched(
                task_id=task.id,
                adapter=attempt.adapter,
                attempt=state.attempt + 1,
                branch=attempt.session.branch,
                phase=attempt.phase,
            )
        )
        if self._run.stopping:
            return await self._writes.requeue(attempt, "stopped")
        return True

    async def _landed_before(self, attempt: Attempt) -> bool:
        """A task tried before may have landed without being written done: its lease lapsed
        while its merge was under way (a machine too busy to renew it in time; the sweep
        then gave the task back while the merge went on), or, in a team, the workstation
        that pushed it stopped right after (paused, killed, cut off). Git is the truth: its
        ``Council-Task`` trailer on the base (the remote's, in a team) ends it ``done`` here,
        on every path, rather than a retry that finds its own work already there and calls
        that "no changes"."""
        commit = await self._run.services.merges.landed_commit(attempt.key)
        if commit is None:
            return False
        now = utcnow()
        updates = {
            "status": TaskStatus.DONE,
            "merged_commit": commit,
            "current_phase": None,
            "finished_at": now,
            "error": None,
        }
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)
        await self._run.events.emit(TaskAlreadyMerged(task_id=attempt.key, commit=commit))
        return True

    async def _worktree(
        self, session_id: str, attempt: Attempt, state: TaskState, *, new: bool
    ) -> SessionWorktree:
        worktrees = self._run.services.worktrees
        if not new:
            try:
                kept = await worktrees.get_session(session_id)
            except WorkspaceError:
                # Not in this clone: a part may have it (in a team, the last attempt may have
                # run on another workstation; a pull request's feedback round checks out the
                # branch it pushed), else the attempt starts afresh.
                adopted = await self._parts.adopt(attempt, session_id, state)
                if adopted is not None:
                    return adopted
            else:
                return await worktrees.recreate_session_worktree(kept)
        # A new worktree: ``new`` means a session id just drawn at random, so nobody can have
        # a worktree for it yet.
        await self._parts.forking(attempt)
        start = await self._parts.fork_at(attempt, state)
        return await worktrees.create_session_worktree(
            session_id,
            attempt.adapter,
            attempt.worktree_task,
            at_least=state.attempt + 1,
            start=start,
            beside=self._beside_fork(attempt, session_id),
        )

    def _beside_fork(self, attempt: Attempt, session_id: str) -> Callable[[], None] | None:
        """The blocking work the fork's worker-thread call carries: the parts' (a block of
        ports), then the files the other sessions are on, for the attempt's first prompt
        (``TaskRun.busy_read``), where nothing that can wait comes before it (no session
        services to start: the prompt reads them itself then)."""
        fork = self._parts.with_fork(attempt, session_id)
        read = None
        if not self._run.services.config.services:
            owner = attempt.lock_owner(session_id)
            read = self._writes.contexts.contexts.reading(exclude={owner})
        attempt.busy_read = read
        if read is None:
            return fork

        def beside() -> None:
            if fork is not None:
                fork()
            read.take()

        return beside

    async def _execute(self, attempt: Attempt) -> WorkflowResult:
        assert attempt.session is not None
        services = self._run.services
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
            on_event=self._inflight.listener(attempt, self._run.events.on_event),
            lock_owner=attempt.lock_owner(attempt.session.session_id),
            on_phase_end=self._phase_end(attempt),
            on_phase_start=self._phase_start(attempt),
            on_files=self._files_reporter(attempt),
            carry_files=self._files_carrier(attempt),
            carry_phase_end=partial(self._parts.phase_ending, attempt),
            fresh_head=attempt.session.base_commit if attempt.fresh_worktree else None,
            note=attempt.note,
            phases=attempt.phases,
            feedback=attempt.feedback,
            busy_read=attempt.busy_read,
            spend=self._spend(),
            tools=self._tools(attempt),
        )
        full: CouncilError | OSError | None = None
        async with anyio.create_task_group() as group:
            if attempt.task.timeout is not None:
                group.start_soon(_watchdog, attempt, attempt.task.timeout)
            try:
                result = await self._workflow(run)
            except (CouncilError, OSError) as exc:
                if stops_the_run(exc):
                    full = exc  # raised below: out of the group it would come as a group
                result = WorkflowResult(
                    WorkflowStatus.FAILED, message=str(exc), retryable=True, outcome_kind="crashed"
                )
            group.cancel_scope.cancel()
        if full is not None:
            raise full
        if attempt.secret is not None:  # a push found a secret in its work (``team.work``)
            return WorkflowResult(
                WorkflowStatus.FAILED,
                phase=result.phase,
                message=str(attempt.secret),
                retryable=False,
                outcome_kind=attempt.secret.outcome,
                usage=result.usage,
            )
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

    def _files_reporter(self, attempt: Attempt) -> Callable[[Sequence[str]], Awaitable[None]]:
        contexts = self._writes.contexts
        assert attempt.session is not None
        owner = attempt.lock_owner(attempt.session.session_id)

        async def report(paths: Sequence[str]) -> None:
            await contexts.changing(owner, paths)

        return report

    def _files_carrier(self, attempt: Attempt) -> Callable[[Sequence[str]], Awaitable[Carrier]]:
        """``_files_reporter``'s write, handed back for the phase's completion to carry."""
        contexts = self._writes.contexts
        assert attempt.session is not None
        owner = attempt.lock_owner(attempt.session.session_id)

        async def carry(paths: Sequence[str]) -> Carrier:
            return await contexts.changing_carried(owner, paths)

        return carry

    def _tools(self, attempt: Attempt) -> ToolsLater | None:
        """The council's MCP server for each phase's CLI (``council_mcp: false``: none), made
        when a phase whose CLI takes MCP servers first opens it (``ToolsLater``)."""
        services = self._run.services
        if not services.config.council_mcp:
            return None
        assert attempt.session is not None
        session = attempt.session.session_id
        owner, task_id = attempt.lock_owner(session), attempt.task.id
        reporter = self._files_reporter(attempt)

        def make() -> SessionTools:
            from orchestrator.coordination.desk import Caller
            from orchestrator.coordination.session_tools import session_tools

            caller = Caller(session, task_id, owner)
            return session_tools(services.store, services.locks, caller, reporter)

        return ToolsLater(make)

    def _phase_start(
        self, attempt: Attempt
    ) -> Callable[[str], Awaitable[SessionSide | None]] | None:
        """What precedes each phase: what the parts do then (the session's services started);
        None when no part does anything."""
        parts = self._parts
        if not parts.phase_starters:
            return None

        async def starting(phase: str) -> SessionSide | None:
            return await parts.phase_starting(attempt, phase)

        return starting

    def _phase_end(self, attempt: Attempt) -> Callable[[], Awaitable[None]] | None:
        """What follows each phase's saved work: what the parts do then (in a team the
        branch published, then the collision radar's look); None when no part does anything."""
        parts = self._parts
        if not parts.phase_listeners:
            return None

        async def ended() -> None:
            await parts.phase_ended(attempt)

        return ended


def _unrecorded(attempt: Attempt, exc: StoreUnavailable) -> None:
    """The attempt's end cannot be recorded now (the store is away): it writes nothing more.
    Its claim lapses and the sweep puts the task back in the queue; its work is committed on
    its branch, which the next attempt continues. One already ``ENDED`` had its end recorded."""
    if attempt.stage is not Stage.ENDED:
        attempt.lose()
    log.warning(
        "task %s: its end cannot be recorded (%s); the task will be retried", attempt.key, exc
    )


async def _watchdog(attempt: Attempt, seconds: float) -> None:
    await anyio.sleep(seconds)
    attempt.timed_out = True
    attempt.cancel.set()


def _new_session_id(task_id: str) -> str:
    # Random, so a worktree a finished run kept for the same task id never collides.
    return derived_id(task_id, secrets.token_hex(3), limit=59)


def _retry_note(state: TaskState) -> str | None:
    """Why the task's last attempt changed nothing, when it did (``failures``)."""
    return TaskMeta.read(state.metadata).retry.retry_note or None


def _with_session(state: TaskState, session_id: str) -> dict[str, Any]:
    """``state``'s metadata naming ``session_id`` as the worktree the task keeps."""
    meta = TaskMeta.read(state.metadata)
    meta.worktree.session = session_id
    return meta.dump()
