"""The ADW workflow: one attempt at one task, phase by phase (``run_workflow(run)``).

The scheduler hands over a ``TaskRun`` (worktree made, claim held) and gets a
``WorkflowResult``; everything between is here:

- **Phases** are ``config.phases_for(task)`` (scout → plan → build → review by default). Each
  runs one CLI in the session's worktree (``phases``: its adapter, prompt, limits; where it
  starts: ``phase_start``).
- **State**: every transition is written to ``TaskState.phases`` with the claim's fencing
  token (``phase_book``); a ``StaleClaim`` propagates (the lease is gone: nothing more may be
  written). A run resumes (``resume``) after the longest prefix of phases that are
  ``completed`` with their handoff still stored and intact; a completed phase whose handoff
  records commits is only reused on the same branch (its code must be in this worktree).
  Everything after the first phase that runs again, runs again.
- **Handoffs** (``handoff``, assembled by ``handoffs.assemble``): stored as
  ``handoffs/<task>.<phase>``, written to ``.council/handoff/<phase>.json`` in the worktree
  (never committed), rendered into the next prompt with the keys that phase needs
  (``prompts``); a build sent back also reads the review that sent it.
- **Before build** the plan's files (``FILES:`` line) are locked for the session
  (``locks.acquire_file_locks``, waiting up to ``PLAN_LOCK_TIMEOUT``); busy files fail the
  attempt, retryable. Locks are never released here: the scheduler releases the session's.
- **Verified completion**: after build the orchestrator commits the worktree; an empty diff
  against the base is ``no_changes`` (``permission_denied``, final, when the CLI was refused
  something or its adapter cannot write with its options), then each verify command must
  pass (``verify``). After the last phase anything left uncommitted (a reviewer's edit) is
  committed, and verify runs again if HEAD moved since it last passed; when the build itself
  ran last and no verify command ran after its commit, that commit and its facts stand
  (nothing else has run in the worktree since). Exit code 0 proves nothing.
- **Review** ends with ``VERDICT: approve`` or ``VERDICT: request-changes`` (none stated:
  approve). Request-changes sends the task back to build with the review as a second
  handoff, at most ``workflow.max_review_rounds`` times; once more is FAILED, not retryable.
- **Outcomes** map to results as ``results`` tables them. A rate-limited phase keeps
  the CLI's native session id in its record and the next attempt (same adapter, same branch)
  continues that conversation with ``resume_session_id``; so does one that was cancelled.
  Either way the phase starts again from its recorded start, its leftovers kept aside
  (``phase_start``), and the continued conversation is told so. A CLI that refuses that
  resume runs the phase as a fresh session (``runner.phase``): the event
  ``phase.resume_refused`` says so, and it is not a failure.
- **Council mode** (best of N): ``pick_best`` (``best_of``, re-exported here) compares the
  candidates the scheduler ran and names the one to merge.
- **Outside the worktree**: each CLI session runs between two looks at what it must not
  change (``tamper``: git's shared hooks and config, the shared refs, the main checkout); a
  change traced to the session fails the attempt, not retryable, naming what changed (git's
  setup is put back first), so the work does not land; its branch is kept. One that cannot be
  traced among sessions side by side makes each of them retryable (``phases``).
- **Services** (``TaskRun.on_phase_start``): before each phase the session's services it
  needs are started; one that is not ready fails the phase as ``service_failed`` with its
  name and its log's tail. The phase's CLI and verify commands get the session's side.
- **Nothing is lost**: whatever ends an attempt early (failure, park, cancel, the caller's
  cancellation), the worktree is committed to the session branch first.
"""

from __future__ import annotations

import time
from functools import partial

import anyio

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.errors import WorkflowError
from orchestrator.services.service import ServiceFailed
from orchestrator.workflow.best_of import CandidateResult, pick_best
from orchestrator.workflow.checks.build import BuildChecks
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.phases import PhaseSteps
from orchestrator.workflow.plan_locks import PLAN_LOCK_TIMEOUT
from orchestrator.workflow.progress import BUILD, PLAN, REVIEW, Progress, Stop
from orchestrator.workflow.results import result_for
from orchestrator.workflow.resume import find_resume_point
from orchestrator.workflow.saving import Saver
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus

__all__ = [
    "BUILD",
    "PLAN",
    "PLAN_LOCK_TIMEOUT",
    "REVIEW",
    "CandidateResult",
    "WorkflowError",
    "pick_best",
    "run_workflow",
]

_CLEANUP_TIMEOUT = 30.0
SERVICE_FAILED = "service_failed"  # a phase's service was not ready: not the CLI's failure


async def run_workflow(run: TaskRun) -> WorkflowResult:
    """Take ``run.task`` through its phases in ``run.session``'s worktree (module doc)."""
    return await _Workflow(run).execute()


class _Workflow:
    """The phase loop, composed of the parts that run a phase, save work and check it."""

    def __init__(self, run: TaskRun) -> None:
        self.run = run
        timeout = run.task.timeout
        deadline = time.monotonic() + timeout if timeout is not None else None
        self.progress = Progress(deadline=deadline)
        self.book = PhaseBook(
            run.store,
            run.task.id,
            run.claim_token,
            run.session.session_id,
            run.on_event,
            fields={"branch": run.session.branch, "worktree": str(run.session.path)},
        )
        self.saver = Saver(run, self.book, self.progress)
        self.checks = BuildChecks(run, self.progress, self.saver)
        self.steps = PhaseSteps(run, self.book, self.progress, self.saver, self.checks)
        self.names = self.steps.names

    async def execute(self) -> WorkflowResult:
        await self.book.load(self.run.phases)
        session = self.run.session
        point = await find_resume_point(
            self.run.store,
            self.book,
            session,
            self.names,
            holds=partial(self.run.worktrees.branch_holds, session),
            build=BUILD,
        )
        self.progress.handoffs, self.progress.verified_head = point.handoffs, point.verified_head
        try:
            return await self._loop(point.index, point.round)
        except Stop as stop:
            return self._finished(stop.result)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                await self.saver.after_cancellation()
            raise

    async def _loop(self, index: int, round_: int) -> WorkflowResult:
        phases, max_rounds = self.steps.phases, self.steps.max_rounds
        while index < len(phases):
            phase = phases[index]
            if self.run.cancel.is_set():
                await self.saver.commit(f"{phase.name} not started (cancelled)")
                raise Stop(result_for(Outcome(kind=OutcomeKind.CANCELLED), phase.name))
            await self._services_for(phase.name)
            handoff = await self.steps.run_phase(index, round_)
            if phase.name == REVIEW and handoff.verdict == "request-changes":
                back = self._build_before(index)
                if back is None or round_ > max_rounds:
                    raise Stop(self._rounds_exhausted(back is None, round_))
                round_ += 1
                result = {"round": round_, "feedback": phase.name}
                await self.book.send_back(self.names[back], result)
                index = back
                continue
            index += 1
        if self.run.side is None:  # resumed past every phase: the last one's services
            await self._services_for(self.names[-1])
        return self._finished(await self.checks.final(self.names[-1]))

    async def _services_for(self, phase: str) -> None:
        """The session's services ``phase`` needs, started: one that is not ready fails the
        phase for it (``service_failed``, its name and log's tail), not for the CLI."""
        try:
            await self.run.phase_starting(phase)
        except ServiceFailed as exc:
            await self.saver.commit(f"{phase} not started (service {exc.name} failed)")
            raise Stop(
                WorkflowResult(
                    status=WorkflowStatus.FAILED,
                    phase=phase,
                    message=str(exc),
                    retryable=True,
                    outcome_kind=SERVICE_FAILED,
                )
            ) from None

    def _build_before(self, index: int) -> int | None:
        before = [i for i, name in enumerate(self.names[:index]) if name == BUILD]
        return before[-1] if before else None

    def _rounds_exhausted(self, no_build: bool, round_: int) -> WorkflowResult:
        if no_build:
            message = "review requested changes and the workflow has no build phase before it"
        else:
            message = (
                f"review still requests changes after {round_} build rounds "
                f"(max_review_rounds={self.steps.max_rounds})"
            )
        return WorkflowResult(
            status=WorkflowStatus.FAILED,
            phase=REVIEW,
            message=message,
            retryable=False,
            outcome_kind=str(OutcomeKind.FAILED),
        )

    def _finished(self, result: WorkflowResult) -> WorkflowResult:
        result.usage = self.progress.usage
        result.phases_run = list(self.progress.phases_run)
        return result
