"""One phase of an attempt: one CLI invocation in the session's worktree.

Each phase runs its CLI (``runner.phase``) with its own adapter, model, prompt template and
limits (``timeout`` default 30 min, ``idle_timeout`` 5 min, both capped by what is left of the
task's ``timeout``). The adapter is ``run.adapter`` when it is in the phase's ``adapter_chain``
(the scheduler's choice, fallbacks included), else the chain's first (a phase with its own
CLI: gemini scouts, codex reviews), else ``run.adapter``. Its prompt is the phase's template
rendered with the handoff before it (``handoffs.prompts``); a build sent back also reads the
review that sent it. Every prompt names the files other sessions own or are changing (their
session context, ``state.context``) and the live sessions whose changes overlap its own (the
collision radar, ``orchestrator.radar``), and a build reports the files it changed for theirs. A
rate-limited or cancelled phase keeps the CLI's native session id and the next attempt (same
adapter, same branch) continues that conversation; a CLI that refuses that resume runs the
phase as a fresh session (``phase.resume_refused``, not a failure).

Every CLI session runs between two looks at what it must not change (``worktrees.tamper``:
git's shared hooks and config, the shared refs, the base's checkouts, the main checkout). A
change traced to this session (or made while it ran alone) fails the attempt, not retryable,
naming what changed (git's setup is put back first), so the work does not land; its branch is
kept. A change that cannot be traced to one of the sessions that ran beside each other fails
none of them for good: each is rechecked (outcome kind ``rechecked``: its work committed on
its branch, the phase run again by the next attempt, not counted as a failed attempt up to
``MAX_RECHECKS`` times, ``scheduler.attempts.failures``). Its own branch moved by its CLI's commits
is its work.
"""

from __future__ import annotations

import logging
from contextlib import nullcontext
from dataclasses import replace
from functools import partial

import anyio

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.config.workflow import PhaseConfig
from orchestrator.errors import AdapterError, CouncilError, stops_the_run
from orchestrator.events.phases import CliSurvivorsStopped, PhaseResumeRefused
from orchestrator.process.output import log_name
from orchestrator.radar.records import collisions_for
from orchestrator.radar.warning import render_warning
from orchestrator.runner.cli_runs import CliRunBook
from orchestrator.runner.phase import call_phase_cli, checkout_confined
from orchestrator.runner.phase_call import (
    DEFAULT_IDLE_TIMEOUT,
    DEFAULT_TIMEOUT,
    PhaseCall,
    PhaseRun,
)
from orchestrator.safety.crashpoints import crash_point
from orchestrator.spend.budgets import Exceeded
from orchestrator.spend.gate import CallPlan, SpendHeld, Ticket
from orchestrator.state.context import ContextManager
from orchestrator.state.transactions import UpdateTask
from orchestrator.workflow.call_window import Closing, Looked, Opening
from orchestrator.workflow.checks.build import BuildChecks
from orchestrator.workflow.feedback_prompt import feedback_prompts
from orchestrator.workflow.handoffs.assemble import (
    PhaseOutput,
    add_usage,
    make_handoff,
    record_result,
)
from orchestrator.workflow.handoffs.document import (
    Handoff,
    VerifyRecord,
    handoff_keeping,
    load_handoff,
    sha256_text,
)
from orchestrator.workflow.handoffs.facts import WorkFacts
from orchestrator.workflow.handoffs.prompts import PromptContext, render_prompt, template_for
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.phase_start import UNDONE, start_point
from orchestrator.workflow.plan_locks import lock_plan_files
from orchestrator.workflow.progress import BUILD, PLAN, REVIEW, Progress, Stop
from orchestrator.workflow.resume import resume_session_id
from orchestrator.workflow.saving import Saver
from orchestrator.workflow.spending import MeteredCall, failing
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from orchestrator.worktrees.tamper.guard import RECHECKED, Tampering

__all__ = ["NOTHING_CHANGED", "PhaseSteps"]

# The one retry of a build that changed nothing: the same prompt would change nothing again.
NOTHING_CHANGED = (
    "NOTE: the previous attempt at this task changed no files ({reason}). This time, make the "
    "change in the files themselves; if it cannot be done, say exactly why.\n\n"
)


log = logging.getLogger(__name__)


class _Unrecorded(Exception):
    """The call's ledger record could not be opened (the store's error, not the look's or the
    socket's before it): raised past the phase's failure handling, as it was before the three
    shared one worker-thread call."""

    def __init__(self, error: CouncilError) -> None:
        super().__init__(str(error))
        self.error = error


class PhaseSteps:
    def __init__(
        self,
        run: TaskRun,
        book: PhaseBook,
        progress: Progress,
        saver: Saver,
        checks: BuildChecks,
    ) -> None:
        self._run = run
        self._book = book
        self._progress = progress
        self._saver = saver
        self._checks = checks
        self.phases = run.config.phases_for(run.task)
        self.names = [phase.name for phase in self.phases]
        self.max_rounds = run.config.workflow.max_review_rounds
        # What the other sessions are on, named in each prompt (its own files, and those of a
        # council task's sibling candidates, share its lock owner and are left out).
        self._contexts = ContextManager(run.store, run.locks.project_dir)

    async def run_phase(self, index: int, round_: int) -> Handoff:
        """Run phase ``index`` in review round ``round_``; its handoff, or a ``Stop``."""
        phase = self.phases[index]
        adapter = self._adapter_for(phase)
        # A call's ledger record is closed however it ends (``spending.MeteredCall``); only
        # one whose orchestrator died leaves it open: it counts at its forecast.
        plan = self._plan(phase.name, adapter, phase.model)
        if plan is not None:  # before anything of the phase is done or recorded
            await self._admitted(plan)
        return await self._run_admitted(index, round_, adapter, plan)

    def _plan(self, name: str, adapter: str, model: str | None) -> CallPlan | None:
        run = self._run
        if run.spend is None:
            return None
        configured = run.config.adapters.get(adapter)
        return CallPlan(
            task=run.task.id,
            phase=name,
            adapter=adapter,
            attempt=max(run.session.attempt, 1),
            model=model or (configured.model if configured else None),
        )

    async def _admitted(self, plan: CallPlan) -> None:
        """The phase's call admitted by the spend gate, or a ``Stop`` holding the attempt: a
        budget without room, a quota that cannot carry it (``_held``)."""
        assert self._run.spend is not None
        try:
            await self._run.spend.check(plan)
        except SpendHeld as held:
            raise await self._held(plan.phase, held) from None

    async def _opened(
        self, plan: CallPlan, opening: Opening, starting: UpdateTask | None
    ) -> tuple[Ticket, Looked]:
        """The phase's call admitted and its ledger record opened, just before its CLI
        starts, with ``opening``'s blocking work in the record's worker-thread call and the
        phase's start (``starting``) written after the record in the same store call; or a
        ``Stop`` holding the attempt (``_held``): then neither is written, and the next
        attempt starts the phase from where its record says, as one never started."""
        assert self._run.spend is not None
        try:
            opened = await self._run.spend.open_then(plan, opening.open, starting)
        except SpendHeld as held:
            await opening.undo()
            raise await self._held(plan.phase, held) from None
        if starting is not None:
            await self._book.started(plan.phase)
        return opened

    async def _held(self, name: str, held: SpendHeld) -> Stop:
        note = await self._saver.commit(f"{name} not started ({held.kind} held)")
        result = WorkflowResult(
            status=WorkflowStatus.HELD,
            phase=name,
            message=held.reason + note,
            outcome_kind=held.kind,
            retry_at=held.until,
        )
        return Stop(result)

    async def _run_admitted(
        self, index: int, round_: int, adapter: str, plan: CallPlan | None
    ) -> Handoff:
        run, progress, session = self._run, self._progress, self._run.session
        phase = self.phases[index]
        name = phase.name
        if name == BUILD:
            await lock_plan_files(run, progress.handoffs.get(PLAN))
        inputs = await self._inputs(index, round_)
        template = template_for(name, phase.prompt_template)
        verify = self._checks.verify
        # The other sessions' files as the worktree's fork read them, for the attempt's first
        # prompt, but for a build that waited for its plan's files: read now.
        busy = run.carried_busy()
        if busy is None or (name == BUILD and PLAN in progress.handoffs):
            busy = await self._contexts.busy_files(exclude={run.lock_session})
        context = PromptContext(
            run.task,
            name,
            round_,
            self.max_rounds + 1,
            verify,
            inputs,
            busy=busy,
            radar=await self._radar_warning(),
        )
        prompt = render_prompt(template, context)
        if name == BUILD and round_ == 1 and run.note:
            prompt = NOTHING_CHANGED.format(reason=run.note) + prompt
        continued: str | None = None
        if name == BUILD and round_ == 1 and run.feedback:
            asked = feedback_prompts(prompt, run.feedback)
            prompt, continued = asked.whole, asked.continued
        resume = resume_session_id(self._book.get(name), adapter, session.branch)
        started = {"round": round_, "branch": session.branch, "prompt_sha256": sha256_text(prompt)}
        if name == BUILD and round_ > 1:
            started["feedback"] = REVIEW
        timeout = progress.limit(phase.timeout or DEFAULT_TIMEOUT, name)  # before it is recorded
        start = await start_point(run, self._book, progress, self._saver, name)
        if start.commit is not None:
            started["start_commit"] = start.commit
        if start.undone and resume is not None:  # the conversation goes on; its edits do not
            prompt = UNDONE + prompt
            continued = UNDONE + continued if continued is not None else None
            started["prompt_sha256"] = sha256_text(prompt)
        # With a ledger record, the phase's start is written in its open, in the same store
        # call (durable before the CLI starts, as on its own); without one, on its own.
        starting = self._book.starting(name, adapter, started) if plan is not None else None
        if starting is None:
            await self._book.start(name, adapter, started)
        progress.phases_run.append(name)
        progress.running = name
        progress.untouched = None
        call = PhaseCall(
            task_id=run.task.id,
            phase=name,
            adapter=adapter,
            prompt=prompt,
            continued_prompt=continued,
            workdir=session.path,
            home_root=run.home_root,
            session_id=session.session_id,
            attempt=max(session.attempt, 1),
            model=phase.model,
            options=phase.options,
            timeout=timeout,
            idle_timeout=phase.idle_timeout or DEFAULT_IDLE_TIMEOUT,
            grace=run.config.scheduler.stop_grace,
            resume_session_id=resume,
            restart=start.restart,
            reach=partial(run.worktrees.sandbox_look, session),
            log_name=log_name(run.task.id, name),
            env=run.side.env if run.side is not None else {},
            join=run.side.join if run.side is not None else None,
            resolv=run.side.resolv if run.side is not None else None,
        )
        if plan is not None:  # its ledger entry names its log: a crash is closed from it
            plan = replace(plan, log=call.log_name)
        try:
            ran, metered = await self._call_watched(call, plan, starting)
        except _Unrecorded as unrecorded:  # not the phase's failure: raised as it came
            raise unrecorded.error from unrecorded.error.__cause__
        except AdapterError as exc:  # not installed, bad options: another attempt won't help
            outcome = Outcome(kind=OutcomeKind.FAILED, message=str(exc))
            raise await self._saver.failure(name, outcome, retryable=False) from exc
        except CouncilError as exc:
            if stops_the_run(exc):
                raise  # not the phase failing: the run stops (the scheduler's runner)
            outcome = Outcome(kind=OutcomeKind.CRASHED, message=str(exc))
            raise await self._saver.failure(name, outcome, retryable=True) from exc
        if ran.resume_refused is not None:
            refused = PhaseResumeRefused(
                task_id=run.task.id,
                phase=name,
                adapter=adapter,
                refused_session=ran.resume_refused,
            )
            await run.store.emit(refused)
        progress.usage = add_usage(progress.usage, ran.cli.outcome.usage)
        if metered is not None and metered.over is not None and ran.cli.result.cancelled:
            raise await self._budget_stop(name, metered.over)  # stopped: not one that ended
        if not ran.cli.ok:
            raise await self._saver.failure(name, ran.cli.outcome)
        handoff = await self._complete(index, round_, adapter, ran)
        if name == BUILD and run.carry_files is None:  # else carried in its completion
            await run.files_reported(handoff.files_changed)
        progress.running = None
        return handoff

    async def _radar_warning(self) -> str:
        """The collision radar's warning for this task's session: who overlaps it, where, what
        they changed (``radar.warning``); "" with ``radar: off``, none, or no store to ask."""
        run = self._run
        if not run.config.radar.on:
            return ""
        try:
            found = await collisions_for(run.store, run.task.id)
        except (CouncilError, OSError) as exc:
            log.warning("the collision radar's records could not be read: %s", exc)
            return ""
        return render_warning(found, run.task.id)

    async def _budget_stop(self, name: str, over: Exceeded) -> Stop:
        """The spend meter stopped the phase's call: a budget it counts to was passed while
        it ran. The attempt is held as a budget hold (``budgets.on_exceed`` applies), its work
        committed; the next attempt starts the phase again from its recorded start."""
        note = await self._saver.commit(f"{name} stopped (budget spent while it ran)")
        result = WorkflowResult(
            status=WorkflowStatus.HELD,
            phase=name,
            message=over.message() + note,
            outcome_kind="budget",
        )
        return Stop(result)

    async def _call_watched(
        self, call: PhaseCall, plan: CallPlan | None, starting: UpdateTask | None
    ) -> tuple[PhaseRun, MeteredCall | None]:
        """Run the phase's CLI between two looks at what it must not change (``tamper``),
        admitted by the spend gate (``plan``), followed by the spend meter and recorded in
        the ledger however it ends; the blocking work on each side of it in one worker-thread
        call a side (``call_window``)."""
        run = self._run
        guard = await run.worktrees.tamper_guard()
        confined = await checkout_confined(run.config, call)
        tools = run.tools if _takes_tools(run, call.adapter) else None
        opening = Opening(
            guard.arming(run.session.path, run.session.branch, confined=confined), tools
        )
        recorded = plan is None
        try:
            if plan is not None:
                ticket, looked = await self._opened(plan, opening, starting)
                recorded = True
            else:
                ticket, looked = None, await anyio.to_thread.run_sync(opening.open)
            watch = await opening.armed(looked)
        except BaseException as exc:
            await opening.undo()
            if not recorded and not opening.raised and isinstance(exc, CouncilError):
                raise _Unrecorded(exc) from exc  # the record's own failure, as it came
            raise
        spend, opened = run.spend, opening.opened
        metered = MeteredCall(spend, ticket) if ticket is not None and spend is not None else None
        try:
            serving = opened.serving(call) if opened is not None else nullcontext(call)
            async with failing(metered), serving as given:  # the council's MCP server, meanwhile
                ran = await call_phase_cli(
                    run.config,
                    run.plugins,
                    given,
                    log_dir=run.log_dir,
                    cancel=run.cancel,
                    on_event=run.on_event,
                    watch=CliRunBook(run.store, run.task.id, call.phase),
                    on_cli_event=metered.meter.heard if metered is not None else None,
                    halt=metered.halt if metered is not None else None,
                )
        except Exception as exc:
            found = await Closing(guard.finishing(watch), opened).finish()
            if found is None:
                raise
            raise await self._tampered(call.phase, found) from exc
        except BaseException:  # cancelled: undo what it changed, say so, go on cancelling
            with anyio.CancelScope(shield=True):
                found = await Closing(guard.finishing(watch), opened).finish()
            if found is not None:
                log.error("task %s, phase %s: %s", run.task.id, call.phase, found.message)
            raise
        if ran.cli.survivors:  # stopped already; the user should know their CLI does this
            stopped = CliSurvivorsStopped(
                task_id=run.task.id, phase=call.phase, processes=list(ran.cli.survivors)
            )
            await run.store.emit(stopped)
        closing = Closing(guard.finishing(watch), opened)
        try:
            if metered is not None:  # the socket and the look after in the record's close
                await metered.close_then(ran, closing.close)
        except Exception as exc:
            found = await closing.finish()
            if found is None:
                raise
            raise await self._tampered(call.phase, found) from exc
        found = await closing.finish()
        if found is not None:
            self._progress.usage = add_usage(self._progress.usage, ran.cli.outcome.usage)
            raise await self._tampered(call.phase, found)
        return ran, metered

    async def _tampered(self, phase: str, found: Tampering) -> Stop:
        branch = self._run.session.branch
        if found.retryable:  # one of the sessions beside it did it: checked again, not failed
            message = (
                f"rechecked, to run again: {found.message}; its work so far is kept on "
                f"branch {branch}"
            )
            outcome = Outcome(kind=OutcomeKind.FAILED, message=message)
            stop = await self._saver.failure(phase, outcome, retryable=True)
            stop.result.outcome_kind = RECHECKED  # not its failure: not counted as one
            return stop
        message = (
            f"blocked, not merged: the CLI {found.message}; the work stays on branch "
            f"{branch} for a human to review"
        )
        outcome = Outcome(kind=OutcomeKind.FAILED, message=message)
        return await self._saver.failure(phase, outcome, retryable=False)

    def _adapter_for(self, phase: PhaseConfig) -> str:
        chain = self._run.config.adapter_chain(self._run.task, phase)
        if not chain or self._run.adapter in chain:
            return self._run.adapter
        return chain[0]

    async def _inputs(self, index: int, round_: int) -> list[Handoff]:
        """The previous phase's handoff, and for a build sent back, the review that did it."""
        handoffs = self._progress.handoffs
        inputs = []
        if index > 0 and (previous := handoffs.get(self.names[index - 1])) is not None:
            inputs.append(previous)
        if self.names[index] == BUILD and round_ > 1:
            # A resumed attempt starting at this build has not loaded the review (it comes
            # after build): read it from the store, if it is the one that sent the task back.
            feedback = handoffs.get(REVIEW) or await load_handoff(
                self._run.store, self._run.task.id, REVIEW
            )
            if feedback is not None and feedback.round == round_ - 1:
                inputs.append(feedback)
        return inputs

    async def _complete(self, index: int, round_: int, adapter: str, ran: PhaseRun) -> Handoff:
        run, name = self._run, self.names[index]
        facts: WorkFacts | None = None
        checks: list[VerifyRecord] = []
        if name == BUILD:
            facts, checks = await self._checks.build(round_, ran)
        following = self.names[index + 1] if index + 1 < len(self.names) else None
        output = PhaseOutput(
            run.task, name, following, round_, adapter, run.session.branch, ran, facts, checks
        )
        handoff = make_handoff(output, self._checks.verify)
        # A build's changed files, for the session's context, and the run's features' records
        # of the phase's end (the radar's first sighting): carried in the same call.
        carried = await run.phase_carried(handoff.files_changed if name == BUILD else ())
        crash_point("phase.ended")
        # Its handoff's file and record, then the phase recorded complete: one store call.
        await self._book.complete(
            name,
            native_session_id=ran.cli.native_session_id,
            handoff_sha256=handoff.digest,
            result=record_result(handoff),
            kept=handoff_keeping(run.session.path, handoff),
            carried=carried,
        )
        self._progress.handoffs[name] = handoff
        await run.phase_ended()
        return handoff


def _takes_tools(run: TaskRun, adapter: str) -> bool:
    """Whether the CLI of ``adapter`` takes MCP servers, so is given the council's own
    (``runner.phase``): a CLI that takes none gets no socket opened for it. An adapter the
    registry does not know is said so by ``call_phase_cli``; the tools are opened as before."""
    entry = run.config.adapters.get(adapter)
    try:
        return run.plugins.registry.get(
            entry.type or adapter if entry else adapter
        ).takes_mcp_servers
    except AdapterError:
        return True
