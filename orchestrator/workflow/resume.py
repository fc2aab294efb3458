"""Where an attempt picks up: the phases it may skip, its round, the conversation to continue.

- ``find_resume_point`` walks the phases in order and reuses the longest prefix whose records
  are ``completed`` with their handoff still stored and matching the record's digest; a
  completed phase whose handoff records commits (a build) is reused only on the same branch
  and only when that branch holds its head, since its code must be in this worktree (a
  phase recorded complete on another workstation that was paused before it published its
  branch left its commits there alone). Reused handoffs are written back into the worktree
  (a new worktree has none). The round is the one the build record last carried (a build sent
  back by review is pending with the next round). A reused build that passed verify tells the
  final check which HEAD is verified already.
- ``resume_session_id``: a phase that stopped ``rate_limited`` or ``cancelled`` is continued
  in the same CLI conversation when the adapter and the branch are the same as then.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field

from orchestrator.models import PhaseRecord, PhaseStatus
from orchestrator.state.protocol import StateStore
from orchestrator.workflow.handoffs.document import Handoff, load_handoff, write_handoff_file
from orchestrator.workflow.phase_book import PhaseBook
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["FEEDBACK_OUTCOME", "ResumePoint", "find_resume_point", "resume_session_id"]

_RESUMABLE_OUTCOMES = frozenset({"rate_limited", "cancelled"})
# A completed phase set to run again for a pull request's feedback: its conversation goes on.
FEEDBACK_OUTCOME = "pull_feedback"


@dataclass
class ResumePoint:
    index: int  # the first phase to run (len(phases): none left)
    round: int
    handoffs: dict[str, Handoff] = field(default_factory=dict)
    verified_head: str | None = None


async def find_resume_point(
    store: StateStore,
    book: PhaseBook,
    session: SessionWorktree,
    phases: Sequence[str],
    *,
    holds: Callable[[str], Awaitable[bool]],
    build: str = "build",
) -> ResumePoint:
    """``holds(commit)``: the session's branch contains ``commit``."""
    point = ResumePoint(index=len(phases), round=1)
    for index, name in enumerate(phases):
        handoff = await _reusable(store, book.task_id, book.get(name), session.branch, holds)
        if handoff is None:
            point.index = index
            break
        point.handoffs[name] = handoff
        await write_handoff_file(session.path, handoff)
    record = book.get(build)
    if record is not None:
        point.round = max(int(record.result.get("round", 1)), 1)
    reused = point.handoffs.get(build)
    if reused is not None and all(check.ok for check in reused.verify):
        point.verified_head = reused.head
    return point


async def _reusable(
    store: StateStore,
    task_id: str,
    record: PhaseRecord | None,
    branch: str,
    holds: Callable[[str], Awaitable[bool]],
) -> Handoff | None:
    if record is None or record.status != PhaseStatus.COMPLETED or not record.handoff_sha256:
        return None
    handoff = await load_handoff(store, task_id, record.name, record.handoff_sha256)
    if handoff is None or not handoff.commits:
        return handoff
    if handoff.branch != branch or not await holds(handoff.head or handoff.commits[0]):
        return None  # its code is not in this worktree: run it again
    return handoff


def resume_session_id(record: PhaseRecord | None, adapter: str, branch: str) -> str | None:
    again = record is not None and (record.status, record.outcome) == (
        PhaseStatus.PENDING,
        FEEDBACK_OUTCOME,
    )
    if (
        record is None
        or not (again or record.status == PhaseStatus.FAILED)
        or not (again or record.outcome in _RESUMABLE_OUTCOMES)
        or record.adapter != adapter
        or record.result.get("branch") != branch
    ):
        return None
    return record.native_session_id
