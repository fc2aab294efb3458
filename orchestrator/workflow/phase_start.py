"""Where a phase starts: a commit, recorded before its CLI runs, so that what it did can always
be told from what was there before.

A phase recorded ``running`` on this branch was cut off (the orchestrator died while it ran, or
before its end was recorded): what it left, committed or not, is kept on a rescue ref
(``refs/council/rescue-phase/<session>/<phase>-<n>``) and the worktree put back at its start,
so running it again never stacks a second copy of its work on the first. (A phase that failed
or was parked continues its CLI's conversation instead, and keeps what that conversation did.)
Any other phase starts by committing what the worktree holds, so its start is a commit too;
the first phase in a worktree just checked out at the base, which nothing has run in yet, starts
at that commit (``TaskRun.fresh_head``) without asking git what there is to commit.
"""

from __future__ import annotations

import logging

from orchestrator.events.phases import PhaseLeftoversKept
from orchestrator.models import PhaseStatus
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.progress import Progress
from orchestrator.workflow.saving import Saver
from orchestrator.workflow.task_run import TaskRun

__all__ = ["start_point"]

log = logging.getLogger(__name__)


async def start_point(
    run: TaskRun, book: PhaseBook, progress: Progress, saver: Saver, name: str
) -> str | None:
    """The commit phase ``name`` starts from (module doc); None when it could not be made."""
    session = run.session
    previous = book.get(name)
    start = previous.result.get("start_commit") if previous is not None else None
    if (
        previous is not None
        and previous.status == PhaseStatus.RUNNING
        and previous.result.get("branch") == session.branch
        and isinstance(start, str)
    ):
        ref = f"refs/council/rescue-phase/{session.session_id}/{name}-{previous.attempt}"
        kept = await run.worktrees.rewind(session, start, ref)
        if kept is not None:
            log.warning(
                "task %s: phase %s was cut off; its leftovers are on %s", run.task.id, name, ref
            )
            kept_event = PhaseLeftoversKept(task_id=run.task.id, phase=name, ref=ref, tip=kept)
            await run.store.emit(kept_event)
        progress.committed_head = None
        return start
    fresh = run.take_fresh_head()
    if fresh is not None:  # a worktree just checked out at the base: nothing to commit
        progress.committed_head = fresh
        return fresh
    note = await saver.commit(f"before {name}")
    return None if note else progress.committed_head
