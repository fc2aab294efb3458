"""The ADW workflow: one attempt at one task, phase by phase (``run_workflow(run)``).

The scheduler hands over a ``TaskRun`` (worktree made, claim held) and gets a
``WorkflowResult``; everything between is here:

- **Phases** are ``config.phases_for(task)`` (scout → plan → build → review by default). Each
  runs one CLI in the session's worktree (``phase_cli``) with its own adapter, model, prompt
  template and limits (``timeout`` default 30 min, ``idle_timeout`` 5 min, both capped by what
  is left of the task's ``timeout``). The adapter is ``run.adapter`` when it is in the phase's
  ``adapter_chain`` (the scheduler's choice, fallbacks included), else the chain's first (a
  phase with its own CLI: gemini scouts, codex reviews), else ``run.adapter``.
- **State**: every transition is written to ``TaskState.phases`` with the claim's fencing
  token (``phase_book``); a ``StaleClaim`` propagates (the lease is gone: nothing more may be
  written). A run resumes (``workflow_resume``) after the longest prefix of phases that are
  ``completed`` with their handoff still stored and intact; a completed phase whose handoff
  records commits is only reused on the same branch (its code must be in this worktree).
  Everything after the first phase that runs again, runs again.
- **Handoffs** (``handoff``, assembled by ``workflow_handoffs``): stored as
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
- **Outcomes** map to results as ``workflow_results`` tables them. A rate-limited phase keeps
  the CLI's native session id in its record and the next attempt (same adapter, same branch)
  continues that conversation with ``resume_session_id``; so does one that was cancelled. A
  CLI that refuses that resume runs the phase as a fresh session (``phase_cli``): the event
  ``phase.resume_refused`` says so, and it is not a failure.
- **Council mode** (best of N): ``pick_best`` (``best_of``, re-exported here) compares the
  candidates the scheduler ran and names the one to merge.
- **Outside the worktree**: each CLI session runs between two looks at what it must not
  change (``tamper``: git's shared hooks and config, the main checkout); a change fails the
  attempt, not retryable, naming what changed (git's setup is put back first), so the work
  does not land; its branch is kept.
- **Nothing is lost**: whatever ends an attempt early (failure, park, cancel, the caller's
  cancellation), the worktree is committed to the session branch first.
"""

from __future__ import annotations

import contextlib
import logging
import time

import anyio

from orchestrator.adapter import Outcome, OutcomeKind, Usage
from orchestrator.config.workflow import PhaseConfig
from orchestrator.errors import (
    AdapterError,
    CouncilError,
    LockError,
    PathEscapeError,
    SecretInWork,
    needs_repair,
    stops_the_run,
)
from orchestrator.events import Event
from orchestrator.models import PhaseStatus
from orchestrator.runner.cli_runs import CliRunBook
from orchestrator.runner.phase import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    PhaseCall,
    PhaseRun,
    call_phase_cli,
)
from orchestrator.safety.crashpoints import crash_point
from orchestrator.workflow.best_of import CandidateResult, WorkflowError, pick_best
from orchestrator.workflow.checks.verify import DEFAULT_VERIFY_TIMEOUT, failure_message, run_verify
from orchestrator.workflow.handoffs.assemble import (
    PhaseOutput,
    add_usage,
    make_handoff,
    record_result,
)
from orchestrator.workflow.handoffs.document import (
    Handoff,
    VerifyRecord,
    load_handoff,
    sha256_text,
    store_handoff,
    write_handoff_file,
)
from orchestrator.workflow.handoffs.facts import WorkFacts, collect_facts
from orchestrator.workflow.handoffs.prompts import PromptContext, render_prompt, template_for
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.results import empty_build_outcome, result_for
from orchestrator.workflow.resume import find_resume_point, resume_session_id
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from orchestrator.worktrees.tamper.guard import Tampering

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

log = logging.getLogger(__name__)

PLAN, BUILD, REVIEW = "plan", "build", "review"
PLAN_LOCK_TIMEOUT = 60.0
_CLEANUP_TIMEOUT = 30.0


async def run_workflow(run: TaskRun) -> WorkflowResult:
    """Take ``run.task`` through its phases in ``run.session``'s worktree (module doc)."""
    return await _Workflow(run).execute()


class _Stop(Exception):
    """A phase decided the attempt; carries the result."""

    def __init__(self, result: WorkflowResult) -> None:
        self.result = result


class _Workflow:
    def __init__(self, run: TaskRun) -> None:
        self.run = run
        self.task = run.task
        self.session = run.session
        self.phases = run.config.phases_for(run.task)
        self.names = [phase.name for phase in self.phases]
        self.book = PhaseBook(
            run.store,
            run.task.id,
            run.claim_token,
            run.session.session_id,
            run.on_event,
            fields={"branch": run.session.branch, "worktree": str(run.session.path)},
        )
        self.verify = run.config.verify_for(run.task)
        self.max_rounds = run.config.workflow.max_review_rounds
        self.handoffs: dict[str, Handoff] = {}
        self.phases_run: list[str] = []
        self.usage: Usage | None = None
        self.verified_head: str | None = None
        self.facts: WorkFacts | None = None  # the last build's, while HEAD stays where it was
        # The build's facts while nothing has run in the worktree since its commit: no CLI
        # (the next phase clears it) and no verify command (only kept when there are none).
        self.untouched: WorkFacts | None = None
        self.committed_head: str | None = None  # HEAD after the last commit of the worktree
        self.secret_found: SecretInWork | None = None  # a known key masked in a commit
        self.running: str | None = None
        timeout = run.task.timeout
        self.deadline = time.monotonic() + timeout if timeout is not None else None

    # --- the loop --------------------------------------------------------------------------

    async def execute(self) -> WorkflowResult:
        await self.book.load()
        point = await find_resume_point(
            self.run.store, self.book, self.session, self.names, build=BUILD
        )
        self.handoffs, self.verified_head = point.handoffs, point.verified_head
        try:
            return await self._loop(point.index, point.round)
        except _Stop as stop:
            return self._finished(stop.result)
        except anyio.get_cancelled_exc_class():
            with anyio.CancelScope(shield=True), anyio.move_on_after(_CLEANUP_TIMEOUT):
                await self._save_after_cancellation()
            raise

    async def _loop(self, index: int, round_: int) -> WorkflowResult:
        while index < len(self.phases):
            phase = self.phases[index]
            if self.run.cancel.is_set():
                await self._commit(f"{phase.name} not started (cancelled)")
                raise _Stop(result_for(Outcome(kind=OutcomeKind.CANCELLED), phase.name))
            handoff = await self._run_phase(index, round_)
            if phase.name == REVIEW and handoff.verdict == "request-changes":
                back = self._build_before(index)
                if back is None or round_ > self.max_rounds:
                    raise _Stop(self._rounds_exhausted(back is None, round_))
                round_ += 1
                result = {"round": round_, "feedback": phase.name}
                await self.book.send_back(self.names[back], result)
                index = back
                continue
            index += 1
        return self._finished(await self._final_check())

    def _build_before(self, index: int) -> int | None:
        before = [i for i, name in enumerate(self.names[:index]) if name == BUILD]
        return before[-1] if before else None

    def _rounds_exhausted(self, no_build: bool, round_: int) -> WorkflowResult:
        if no_build:
            message = "review requested changes and the workflow has no build phase before it"
        else:
            message = (
                f"review still requests changes after {round_} build rounds "
                f"(max_review_rounds={self.max_rounds})"
            )
        return WorkflowResult(
            status=WorkflowStatus.FAILED,
            phase=REVIEW,
            message=message,
            retryable=False,
            outcome_kind=str(OutcomeKind.FAILED),
        )

    def _finished(self, result: WorkflowResult) -> WorkflowResult:
        result.usage = self.usage
        result.phases_run = list(self.phases_run)
        return result

    # --- one phase ---------------------------------------------------------------------------

    async def _run_phase(self, index: int, round_: int) -> Handoff:
        phase = self.phases[index]
        name = phase.name
        adapter = self._adapter_for(phase)
        if name == BUILD:
            await self._lock_plan_files()
        inputs = await self._inputs(index, round_)
        template = template_for(name, phase.prompt_template)
        context = PromptContext(self.task, name, round_, self.max_rounds + 1, self.verify, inputs)
        prompt = render_prompt(template, context)
        resume = resume_session_id(self.book.get(name), adapter, self.session.branch)
        started = {
            "round": round_,
            "branch": self.session.branch,
            "prompt_sha256": sha256_text(prompt),
        }
        if name == BUILD and round_ > 1:
            started["feedback"] = REVIEW
        timeout = self._limit(phase.timeout or DEFAULT_TIMEOUT, name)  # before it is recorded
        start = await self._start_point(name)
        if start is not None:
            started["start_commit"] = start
        await self.book.start(name, adapter, started)
        self.phases_run.append(name)
        self.running = name
        self.untouched = None
        call = PhaseCall(
            task_id=self.task.id,
            phase=name,
            adapter=adapter,
            prompt=prompt,
            workdir=self.session.path,
            home_root=self.run.home_root,
            session_id=self.session.session_id,
            attempt=max(self.session.attempt, 1),
            model=phase.model,
            timeout=timeout,
            idle_timeout=phase.idle_timeout or DEFAULT_IDLE_TIMEOUT,
            grace=self.run.config.scheduler.stop_grace,
            resume_session_id=resume,
        )
        try:
            ran = await self._call_watched(call)
        except AdapterError as exc:  # not installed, bad options: another attempt won't help
            outcome = Outcome(kind=OutcomeKind.FAILED, message=str(exc))
            raise await self._failure(name, outcome, retryable=False) from exc
        except CouncilError as exc:
            if stops_the_run(exc):
                raise  # not the phase failing: the run stops (see scheduler_attempt)
            outcome = Outcome(kind=OutcomeKind.CRASHED, message=str(exc))
            raise await self._failure(name, outcome, retryable=True) from exc
        if ran.resume_refused is not None:
            data = {"task": self.task.id, "phase": name, "adapter": adapter}
            data["refused_session"] = ran.resume_refused
            await self.run.store.emit(
                Event(type="phase.resume_refused", data=data, level="warning")
            )
        self.usage = add_usage(self.usage, ran.cli.outcome.usage)
        if not ran.cli.ok:
            raise await self._failure(name, ran.cli.outcome)
        handoff = await self._complete(index, round_, adapter, ran)
        self.running = None
        return handoff

    async def _start_point(self, name: str) -> str | None:
        """The commit the phase starts from, recorded before its CLI runs, so that what it
        did can always be told from what was there before.

        A phase recorded ``running`` on this branch was cut off (the orchestrator died while
        it ran, or before its end was recorded): what it left, committed or not, is kept on a
        rescue ref and the worktree put back at its start, so running it again never stacks
        a second copy of its work on the first. (A phase that failed or was parked continues
        its CLI's conversation instead, and keeps what that conversation did.) Any other
        phase starts by committing what the worktree holds, so its start is a commit too."""
        previous = self.book.get(name)
        start = previous.result.get("start_commit") if previous is not None else None
        if (
            previous is not None
            and previous.status == PhaseStatus.RUNNING
            and previous.result.get("branch") == self.session.branch
            and isinstance(start, str)
        ):
            ref = f"refs/council/rescue-phase/{self.session.session_id}/{name}-{previous.attempt}"
            kept = await self.run.worktrees.rewind(self.session, start, ref)
            if kept is not None:
                log.warning(
                    "task %s: phase %s was cut off; its leftovers are on %s",
                    self.task.id,
                    name,
                    ref,
                )
                data = {"task": self.task.id, "phase": name, "ref": ref, "tip": kept}
                await self.run.store.emit(
                    Event(type="phase.leftovers_kept", data=data, level="warning")
                )
            self.committed_head = None
            return start
        note = await self._commit(f"before {name}")
        return None if note else self.committed_head

    async def _call_watched(self, call: PhaseCall) -> PhaseRun:
        """Run the phase's CLI between two looks at what it must not change (``tamper``)."""
        guard = await self.run.worktrees.tamper_guard()
        watch = await guard.watch(self.session.path, self.session.branch)
        try:
            ran = await call_phase_cli(
                self.run.config,
                self.run.plugins,
                call,
                log_dir=self.run.log_dir,
                cancel=self.run.cancel,
                on_event=self.run.on_event,
                watch=CliRunBook(self.run.store, self.task.id, call.phase),
            )
        except Exception as exc:
            found = await guard.finish(watch)
            if found is None:
                raise
            raise await self._tampered(call.phase, found) from exc
        except BaseException:  # cancelled: undo what it changed, say so, go on cancelling
            with anyio.CancelScope(shield=True):
                found = await guard.finish(watch)
            if found is not None:
                log.error("task %s, phase %s: %s", self.task.id, call.phase, found.message)
            raise
        if ran.cli.survivors:  # stopped already; the user should know their CLI does this
            data = {"task": self.task.id, "phase": call.phase, "processes": ran.cli.survivors}
            await self.run.store.emit(
                Event(type="cli.survivors_stopped", data=data, level="warning")
            )
        found = await guard.finish(watch)
        if found is not None:
            self.usage = add_usage(self.usage, ran.cli.outcome.usage)
            raise await self._tampered(call.phase, found)
        return ran

    async def _tampered(self, phase: str, found: Tampering) -> _Stop:
        message = (
            f"blocked, not merged: the CLI {found.message}; the work stays on branch "
            f"{self.session.branch} for a human to review"
        )
        return await self._failure(
            phase, Outcome(kind=OutcomeKind.FAILED, message=message), retryable=False
        )

    def _adapter_for(self, phase: PhaseConfig) -> str:
        chain = self.run.config.adapter_chain(self.task, phase)
        if not chain or self.run.adapter in chain:
            return self.run.adapter
        return chain[0]

    async def _inputs(self, index: int, round_: int) -> list[Handoff]:
        """The previous phase's handoff, and for a build sent back, the review that did it."""
        inputs = []
        if index > 0 and (previous := self.handoffs.get(self.names[index - 1])) is not None:
            inputs.append(previous)
        if self.names[index] == BUILD and round_ > 1:
            # A resumed attempt starting at this build has not loaded the review (it comes
            # after build): read it from the store, if it is the one that sent the task back.
            feedback = self.handoffs.get(REVIEW) or await load_handoff(
                self.run.store, self.task.id, REVIEW
            )
            if feedback is not None and feedback.round == round_ - 1:
                inputs.append(feedback)
        return inputs

    def _limit(self, seconds: float, phase: str) -> float:
        if self.deadline is None:
            return seconds
        left = self.deadline - time.monotonic()
        if left <= 0:
            message = f"the task's time limit ran out before phase {phase}"
            raise _Stop(result_for(Outcome(kind=OutcomeKind.TIMED_OUT), phase, message))
        return min(seconds, left)

    async def _complete(self, index: int, round_: int, adapter: str, ran: PhaseRun) -> Handoff:
        name = self.names[index]
        facts: WorkFacts | None = None
        checks: list[VerifyRecord] = []
        if name == BUILD:
            facts, checks = await self._verified_build(round_, ran)
        following = self.names[index + 1] if index + 1 < len(self.names) else None
        output = PhaseOutput(
            self.task, name, following, round_, adapter, self.session.branch, ran, facts, checks
        )
        handoff = make_handoff(output, self.verify)
        await store_handoff(self.run.store, handoff)
        await write_handoff_file(self.session.path, handoff)
        crash_point("phase.ended")
        await self.book.complete(
            name,
            native_session_id=ran.cli.native_session_id,
            handoff_sha256=handoff.digest,
            result=record_result(handoff),
        )
        self.handoffs[name] = handoff
        return handoff

    # --- verified completion -----------------------------------------------------------------

    async def _verified_build(
        self, round_: int, ran: PhaseRun
    ) -> tuple[WorkFacts, list[VerifyRecord]]:
        try:
            await self.run.worktrees.commit_in_worktree(
                self.session, f"council: {self.task.id} build (round {round_})"
            )
            facts = self.facts = await collect_facts(self.run.worktrees, self.session)
        except CouncilError as exc:
            if stops_the_run(exc):
                raise  # the CLI's work stays in the worktree; the run stops until repaired
            outcome = Outcome(kind=OutcomeKind.FAILED, message=str(exc))
            # A key in the work is the CLI's doing, not a passing fault: a person looks.
            retryable = not isinstance(exc, SecretInWork)
            raise await self._failure(BUILD, outcome, retryable=retryable) from exc
        if not facts.files:
            # Refused, or unable to write with its options: the same again would be refused.
            outcome = empty_build_outcome(ran.denials, ran.read_only, ran.summary)
            raise await self._failure(BUILD, outcome)
        checks = await self._run_verify()
        failed = next((check for check in checks if not check.ok), None)
        if failed is not None:
            outcome = Outcome(kind=OutcomeKind.FAILED, message=failure_message(failed))
            raise await self._failure(BUILD, outcome, retryable=True)
        self.verified_head = facts.head
        self.untouched = None if self.verify else facts
        return facts, checks

    async def _final_check(self) -> WorkflowResult:
        last = self.names[-1]
        facts = self.untouched  # the build was the last thing to run: it just committed all
        if facts is None:
            await self._commit("final changes")
            facts = self.facts
            if facts is None or facts.head is None or facts.head != self.committed_head:
                # Something moved HEAD since the build's facts (a reviewer's edit): read anew.
                facts = await collect_facts(self.run.worktrees, self.session)
        if self.secret_found is not None:  # masked and committed by now; never landed
            found = Outcome(kind=OutcomeKind.FAILED, message=str(self.secret_found))
            result = result_for(found, last)
            result.retryable = False
            return result
        if not facts.files:
            message = "the task's branch holds no changes against the base"
            return result_for(Outcome(kind=OutcomeKind.NO_CHANGES, message=message), last)
        if facts.head != self.verified_head:
            checks = await self._run_verify()
            failed = next((check for check in checks if not check.ok), None)
            if failed is not None:
                message = failure_message(failed)
                return result_for(Outcome(kind=OutcomeKind.FAILED, message=message), last)
        return WorkflowResult(
            status=WorkflowStatus.READY_TO_MERGE,
            phase=last,
            message=f"ready to merge: {len(facts.files)} files, {facts.stat.commits_ahead} commits",
            commit=facts.head,
            files_changed=facts.files,
        )

    async def _run_verify(self) -> list[VerifyRecord]:
        """The verify commands, then the worktree put back to the commit they checked: what
        they wrote (reports, caches, a dump of their environment) is no CLI's work and must
        never be committed with it."""
        checks = await run_verify(
            self.verify,
            self.session.path,
            timeout=self._verify_timeout(),
            passthrough=self.run.config.worktrees.passthrough_env,
        )
        left = await self.run.worktrees.discard_uncommitted(self.session)
        if left:
            log.info("task %s: verify left %s; not committed", self.task.id, ", ".join(left[:20]))
            event = Event(type="verify.discarded", data={"task": self.task.id, "paths": left[:50]})
            await self.run.store.emit(event)
        return checks

    def _verify_timeout(self) -> float:
        if self.deadline is None:
            return DEFAULT_VERIFY_TIMEOUT
        return max(min(DEFAULT_VERIFY_TIMEOUT, self.deadline - time.monotonic()), 1.0)

    # --- locks -------------------------------------------------------------------------------

    async def _lock_plan_files(self) -> None:
        plan = self.handoffs.get(PLAN)
        if plan is None or not plan.files_to_touch:
            return
        locks, sid = self.run.locks, self.run.lock_session
        held = {grant.path for grant in locks.held(sid)}
        wanted: list[str] = []
        for path in plan.files_to_touch:
            try:
                normalized = locks.paths.normalize(path)
            except PathEscapeError as exc:
                log.warning("task %s: plan file %r not locked: %s", self.task.id, path, exc)
                continue
            if normalized not in held:
                wanted.append(normalized)
        if not wanted:
            return
        try:
            await locks.acquire_file_locks(sid, wanted, timeout=PLAN_LOCK_TIMEOUT)
        except LockError as exc:
            if needs_repair(exc):
                raise  # nobody holds it: the run stops for the repair (see scheduler_attempt)
            raise _Stop(
                WorkflowResult(
                    status=WorkflowStatus.FAILED,
                    phase=BUILD,
                    message=f"the plan's files are not free: {exc}",
                    retryable=True,
                )
            ) from exc

    # --- ending early ------------------------------------------------------------------------

    async def _failure(
        self, phase: str, outcome: Outcome, *, retryable: bool | None = None
    ) -> _Stop:
        """Save the work and record the failure; the stop that ends the attempt."""
        note = await self._commit(f"{phase} stopped ({outcome.kind})")
        message = outcome.message or str(outcome.kind)
        await self.book.fail(
            phase,
            outcome=str(outcome.kind),
            error=message + note,
            native_session_id=outcome.native_session_id,
        )
        self.running = None
        result = result_for(outcome, phase, message + note)
        if retryable is not None and result.status == WorkflowStatus.FAILED:
            result.retryable = retryable
        return _Stop(result)

    async def _commit(self, why: str) -> str:
        """Commit whatever the worktree holds; a note for the message if that failed."""
        self.committed_head = None
        try:
            done = await self.run.worktrees.commit_in_worktree(
                self.session, f"council: {self.task.id} {why}"
            )
        except SecretInWork as exc:
            self.secret_found = exc  # committed, masked: the task must not land (final check)
            return f" ({exc})"
        except CouncilError as exc:
            log.warning("task %s: could not commit the worktree: %s", self.task.id, exc)
            return f" (the worktree could not be committed: {exc})"
        self.committed_head = done.head
        return ""

    async def _save_after_cancellation(self) -> None:
        await self._commit("cancelled")
        if self.running is not None:
            with contextlib.suppress(CouncilError):
                await self.book.fail(
                    self.running,
                    outcome=str(OutcomeKind.CANCELLED),
                    error="the orchestrator cancelled this phase",
                    native_session_id=None,
                )
