"""Where a phase starts: a commit, recorded before its CLI runs, so that what it did can always
be told from what was there before.

One rule for a phase that did not complete, whatever cut it short (the orchestrator killed, a
timeout, a cancel, a fence, a lost claim, the CLI failing or being rate-limited): its work is
never the start of its own next run. Before it runs again on the same branch, what it left,
committed or not (a ``<phase> stopped (…)`` commit included), is kept on a rescue ref
(``refs/council/rescue-phase/<session>/<phase>-<n>``) and the worktree put back at the commit
its record names as its start, so an edit is never made twice. That holds when the phase goes
on in the same CLI conversation too (``resume_session_id``): the conversation keeps what the
CLI read and planned, the files are put back, and its prompt says so (``UNDONE``), so the CLI
does the whole phase again instead of trusting edits that are no longer there. Should the CLI
then run as a new session after all (its adapter cannot continue one, or the CLI refused to),
``Start.restart`` puts the start back first, whatever the refused run touched. A branch that
does not hold the recorded start (taken over from another workstation as published before
that phase began) holds none of its work: nothing is undone.

Any other phase starts by committing what the worktree holds, so its start is a commit too;
the first phase in a worktree just checked out at the base, which nothing has run in yet, starts
at that commit (``TaskRun.fresh_head``) without asking git what there is to commit.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from orchestrator.events.phases import PhaseLeftoversKept
from orchestrator.models import PhaseRecord, PhaseStatus
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.workflow.progress import Progress
from orchestrator.workflow.saving import Saver
from orchestrator.workflow.task_run import TaskRun

__all__ = ["UNDONE", "Start", "start_point", "unfinished_start"]

log = logging.getLogger(__name__)

_UNFINISHED = frozenset({PhaseStatus.RUNNING, PhaseStatus.FAILED})


@dataclass(frozen=True)
class Start:
    commit: str | None  # None: it could not be made (the worktree could not be committed)
    undone: bool = False  # an earlier run's work was put aside (the prompt must say so)
    # Put this start back before the CLI runs as a new session (module doc).
    restart: Callable[[], Awaitable[None]] | None = None


UNDONE = (
    "Note from the orchestrator: this phase was cut short before, and what it changed then "
    "was undone. The files are as they were when the phase began: do the whole phase again, "
    "and do not rely on edits made earlier in this conversation.\n\n"
)


def unfinished_start(record: PhaseRecord | None, branch: str) -> str | None:
    """The start commit of a run of this phase that did not complete on ``branch``."""
    if record is None or record.status not in _UNFINISHED:
        return None
    start = record.result.get("start_commit")
    if record.result.get("branch") != branch or not isinstance(start, str):
        return None
    return start


async def start_point(
    run: TaskRun, book: PhaseBook, progress: Progress, saver: Saver, name: str
) -> Start:
    """Where phase ``name`` starts (module doc)."""
    previous = book.get(name)
    attempt = (previous.attempt if previous is not None else 0) + 1  # the run starting now
    start = unfinished_start(previous, run.session.branch)
    undone = False
    head: str | None
    if start is not None:
        head, undone = await _rewind(run, progress, name, attempt - 1, start)
    else:
        head = run.take_fresh_head()
        if head is not None:  # a worktree just checked out at the base: nothing to commit
            progress.committed_head = head
        else:
            note = await saver.commit(f"before {name}")
            head = None if note else progress.committed_head
    if head is None:
        return Start(None)
    commit = head

    async def restart() -> None:
        await _rewind(run, progress, name, attempt, commit)

    return Start(commit, undone, restart)


async def _rewind(
    run: TaskRun, progress: Progress, name: str, attempt: int, start: str
) -> tuple[str, bool]:
    """The session put back at ``start``; where it is now, and whether anything was undone."""
    session = run.session
    ref = f"refs/council/rescue-phase/{session.session_id}/{name}-{attempt}"
    rewound = await run.worktrees.rewind(session, start, ref)
    progress.committed_head = None
    if rewound.kept is None:
        return rewound.head, False
    log.warning(
        "task %s: phase %s did not complete; what it left is on %s, and it runs again from "
        "its start",
        run.task.id,
        name,
        ref,
    )
    kept = PhaseLeftoversKept(task_id=run.task.id, phase=name, ref=ref, tip=rewound.kept)
    await run.store.emit(kept)
    return rewound.head, True
