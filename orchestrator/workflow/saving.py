"""Nothing is lost: whatever ends an attempt early (failure, park, cancel, the caller's
cancellation), the worktree is committed to the session branch first, and the phase's record
says why it ended."""

from __future__ import annotations

import contextlib
import logging

from orchestrator.adapter import Outcome, OutcomeKind
from orchestrator.errors import CouncilError, SecretInWork
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.progress import Progress, Stop
from orchestrator.workflow.results import result_for
from orchestrator.workflow.task_run import TaskRun, WorkflowStatus

__all__ = ["Saver"]

log = logging.getLogger(__name__)


class Saver:
    def __init__(self, run: TaskRun, book: PhaseBook, progress: Progress) -> None:
        self._run = run
        self._book = book
        self._progress = progress

    async def commit(self, why: str) -> str:
        """Commit whatever the worktree holds; a note for the message if that failed."""
        run, progress = self._run, self._progress
        # The one parent: the head the orchestrator itself last committed or recorded, never
        # what the CLI left its branch at (``worktrees.own_commit``).
        parent, progress.committed_head = progress.committed_head, None
        try:
            done = await run.worktrees.commit_in_worktree(
                run.session, f"council: {run.task.id} {why}", parent=parent
            )
        except SecretInWork as exc:
            progress.secret_found = exc  # committed, masked: the task must not land
            return f" ({exc})"
        except CouncilError as exc:
            log.warning("task %s: could not commit the worktree: %s", run.task.id, exc)
            return f" (the worktree could not be committed: {exc})"
        progress.committed_head = done.head
        return ""

    async def failure(self, phase: str, outcome: Outcome, *, retryable: bool | None = None) -> Stop:
        """Save the work and record the failure; the stop that ends the attempt."""
        note = await self.commit(f"{phase} stopped ({outcome.kind})")
        message = outcome.message or str(outcome.kind)
        await self._book.fail(
            phase,
            outcome=str(outcome.kind),
            error=message + note,
            native_session_id=outcome.native_session_id,
        )
        self._progress.running = None
        await self._run.phase_ended()
        result = result_for(outcome, phase, message + note)
        if retryable is not None and result.status == WorkflowStatus.FAILED:
            result.retryable = retryable
        return Stop(result)

    async def after_cancellation(self) -> None:
        """The caller cancelled the attempt: commit its work, record the phase cancelled."""
        await self.commit("cancelled")
        running = self._progress.running
        if running is not None:
            with contextlib.suppress(CouncilError):
                await self._book.fail(
                    running,
                    outcome=str(OutcomeKind.CANCELLED),
                    error="the orchestrator cancelled this phase",
                    native_session_id=None,
                )
        await self._run.phase_ended()
