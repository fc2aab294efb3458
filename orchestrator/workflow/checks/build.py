"""Verified completion, the orchestrator's own checks (exit code 0 proves nothing).

After build the orchestrator commits the worktree; an empty diff against the base is
``no_changes`` (``permission_denied``, final, when the CLI was refused something or its adapter
cannot write with its options), then each verify command must pass (``verify``). After the
last phase anything left uncommitted (a reviewer's edit) is committed, and verify runs again if
HEAD moved since it last passed; when the build itself ran last and no verify command ran after
its commit, that commit and its facts stand (nothing else has run in the worktree since). What
the verify commands leave in the worktree is undone: it is no CLI's work.
"""

from __future__ import annotations

import logging
import time

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.config.run import RunConfig
from orchestrator.config.sandbox import merged_sandbox
from orchestrator.errors import CouncilError, SecretInWork, stops_the_run
from orchestrator.events.phases import VerifyDiscarded
from orchestrator.runner.cli_run import Sandbox
from orchestrator.runner.phase_call import PhaseRun
from orchestrator.sandbox.choice import settings_for
from orchestrator.sandbox.commands import CommandPlace, SessionSide
from orchestrator.workflow.checks.verify import (
    DEFAULT_VERIFY_TIMEOUT,
    failure_message,
    run_verify,
)
from orchestrator.workflow.handoffs.document import VerifyRecord
from orchestrator.workflow.handoffs.facts import WorkFacts, collect_facts, facts_reader
from orchestrator.workflow.progress import BUILD, Progress
from orchestrator.workflow.results import empty_build_outcome, result_for
from orchestrator.workflow.saving import Saver
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["BuildChecks", "session_place"]

log = logging.getLogger(__name__)


class BuildChecks:
    def __init__(self, run: TaskRun, progress: Progress, saver: Saver) -> None:
        self._run = run
        self._progress = progress
        self._saver = saver
        self.verify = run.config.verify_for(run.task)

    async def build(self, round_: int, ran: PhaseRun) -> tuple[WorkFacts, list[VerifyRecord]]:
        """Commit the build and check it: changes against the base, verify commands."""
        run, progress = self._run, self._progress
        try:
            # The facts are read in the commit's own worker-thread call, from the commit.
            committed, facts = await run.worktrees.commit_then(
                run.session,
                f"council: {run.task.id} build (round {round_})",
                await facts_reader(run.worktrees, run.session),
                diff=True,
                parent=progress.committed_head,  # the build's start, recorded before it ran
            )
            progress.committed_head = committed.head
            progress.facts = facts
        except CouncilError as exc:
            if stops_the_run(exc):
                raise  # the CLI's work stays in the worktree; the run stops until repaired
            outcome = Outcome(kind=OutcomeKind.FAILED, message=str(exc))
            # A key in the work is the CLI's doing, not a passing fault: a person looks.
            retryable = not isinstance(exc, SecretInWork)
            raise await self._saver.failure(BUILD, outcome, retryable=retryable) from exc
        if not facts.files:
            # Refused, or unable to write with its options: the same again would be refused.
            outcome = empty_build_outcome(ran.denials, ran.read_only, ran.summary)
            raise await self._saver.failure(BUILD, outcome)
        checks = await self.run_verify()
        failed = next((check for check in checks if not check.ok), None)
        if failed is not None:
            outcome = Outcome(kind=OutcomeKind.FAILED, message=failure_message(failed))
            raise await self._saver.failure(BUILD, outcome, retryable=True)
        progress.verified_head = facts.head
        progress.untouched = None if self.verify else facts
        return facts, checks

    async def final(self, last: str) -> WorkflowResult:
        """The attempt's end after its last phase ``last``: ready to merge, or why not."""
        run, progress = self._run, self._progress
        facts = progress.untouched  # the build was the last thing to run: it just committed all
        if facts is None:
            await self._saver.commit("final changes")
            facts = progress.facts
            if facts is None or facts.head is None or facts.head != progress.committed_head:
                # Something moved HEAD since the build's facts (a reviewer's edit): read anew.
                facts = await collect_facts(run.worktrees, run.session)
        if progress.secret_found is not None:  # masked and committed by now; never landed
            found = Outcome(kind=OutcomeKind.FAILED, message=str(progress.secret_found))
            result = result_for(found, last)
            result.retryable = False
            return result
        if not facts.files:
            message = "the task's branch holds no changes against the base"
            return result_for(Outcome(kind=OutcomeKind.NO_CHANGES, message=message), last)
        if facts.head != progress.verified_head:
            checks = await self.run_verify()
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

    async def run_verify(self) -> list[VerifyRecord]:
        """The verify commands, then the worktree put back to the commit they checked: what
        they wrote (reports, caches, a dump of their environment) is no CLI's work and must
        never be committed with it."""
        run = self._run
        if not self.verify:
            return []  # nothing ran in the worktree since its commit: nothing to put back
        checks = await run_verify(
            self.verify,
            await self._place(),
            timeout=self._verify_timeout(),
            passthrough=run.config.worktrees.passthrough_env,
        )
        left = await run.worktrees.discard_uncommitted(run.session)
        if left:
            log.info("task %s: verify left %s; not committed", run.task.id, ", ".join(left[:20]))
            event = VerifyDiscarded(task_id=run.task.id, paths=left[:50])
            await run.store.emit(event)
        return checks

    async def _place(self) -> CommandPlace:
        """Where the verify commands run (``session_place``); with services, the session's
        network and their variables (``TaskRun.side``)."""
        run = self._run
        return await session_place(run.config, run.worktrees, run.session, run.side)

    def _verify_timeout(self) -> float:
        deadline = self._progress.deadline
        if deadline is None:
            return DEFAULT_VERIFY_TIMEOUT
        return max(min(DEFAULT_VERIFY_TIMEOUT, deadline - time.monotonic()), 1.0)


async def session_place(
    config: RunConfig,
    worktrees: WorktreeManager,
    session: SessionWorktree,
    side: SessionSide | None = None,
) -> CommandPlace:
    """Where a session's commands run, code its CLI wrote (its verify commands, its
    services): its worktree, its private HOME for commands, and the sandbox of its CLI (its
    adapter's ``sandbox:`` over the run's, the network setting included)."""
    configured = config.adapters.get(session.cli)
    own = configured.sandbox if configured is not None else None
    where = f"adapters.{session.cli}.sandbox" if own is not None else "sandbox"
    settings = await settings_for(merged_sandbox(config.sandbox, own), where)
    sandbox = None
    if settings.kind == "bubblewrap":
        sandbox = Sandbox(settings, await worktrees.sandbox_reach(session))
    home = (await worktrees.layout()).command_home(session.session_id)
    return CommandPlace(session.path, home, sandbox, session=side)
