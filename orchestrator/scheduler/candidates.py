"""Council mode's vocabulary: the candidates of a council task, and what they are called.

A task with ``council: true`` and adapters ``[a, b, c]`` runs as three **candidates**, each a
task of its own to the scheduler (own record in the store, claim, attempts, retries, phase
records and handoffs) with the id ``<task>.c<k>`` (k from 1, in ``adapters`` order), the one
adapter ``adapters[k-1]`` (no fallback: a candidate is defined by its CLI) and no ``council``
flag. Distinct ids keep every candidate's phase records and handoffs apart, since the workflow
keys both by task id. Their worktrees are made for the council task itself, so the branches
are ``council/<task>/<n>``.

- ``metadata.candidates.<adapter>`` (optional) is merged over the task's metadata for that
  adapter's candidate, one level deep (``phase_instructions`` merge by phase): scripted
  personas must be told what to do differently, real CLIs differ by themselves.
- The candidates' file locks (declared files, the plan's files) are all held by one owner,
  ``<task>.council``: siblings never wait for one another, other tasks wait for them all, and
  the locks are released when the council task ends.
- A candidate that is verified and ready waits as ``merging`` with its result in
  ``metadata.candidate`` (``CouncilMeta.candidate``) until the comparison runs.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState, TaskStatus
from orchestrator.state.protocol import StateStore
from orchestrator.task_meta import TaskMeta

__all__ = [
    "CANDIDATE_OVERRIDES",
    "candidate_ready",
    "candidate_settled",
    "candidates_of",
    "council_summary",
    "group_lock_owner",
]

CANDIDATE_OVERRIDES = "candidates"  # task metadata: adapter -> metadata for its candidate


def candidates_of(task: TaskConfig) -> list[TaskConfig]:
    """The candidate tasks of council task ``task``, in ``adapters`` order."""
    overrides = task.metadata.get(CANDIDATE_OVERRIDES)
    overrides = overrides if isinstance(overrides, Mapping) else {}
    base = {k: v for k, v in task.metadata.items() if k != CANDIDATE_OVERRIDES}
    found = []
    for k, adapter in enumerate(task.adapters, start=1):
        extra = overrides.get(adapter)
        metadata = _merged(base, extra) if isinstance(extra, Mapping) else dict(base)
        update = {"id": f"{task.id}.c{k}", "adapters": [adapter], "council": False}
        found.append(task.model_copy(update={**update, "metadata": metadata}))
    return found


def group_lock_owner(task_id: str) -> str:
    """Who holds the file locks of council task ``task_id``'s candidates."""
    return f"{task_id}.council"


def candidate_ready(state: TaskState) -> bool:
    """Verified, committed and waiting for the comparison."""
    return (
        state.status == TaskStatus.MERGING
        and TaskMeta.read(state.metadata).council.candidate is not None
    )


def candidate_settled(state: TaskState | None) -> bool:
    """Nothing more will run for this candidate before the comparison."""
    return state is not None and (state.status in TERMINAL_TASK_STATUSES or candidate_ready(state))


async def council_summary(
    store: StateStore, task: TaskConfig, winner: str | None
) -> dict[str, Any]:
    """What ``metadata.council`` of council task ``task`` says: the candidates as they stand
    now, and the winner's candidate id (None while there is none)."""
    candidates = []
    for member in candidates_of(task):
        state = await store.get_task_state(member.id)
        if state is None:
            continue
        candidates.append(
            {
                "task_id": member.id,
                "adapter": member.adapters[0],
                "status": str(state.status),
                "branch": state.branch,
                "error": state.error,
                "chosen": member.id == winner,
            }
        )
    return {"winner": winner, "candidates": candidates}


def _merged(base: Mapping[str, Any], extra: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in extra.items():
        old = merged.get(key)
        if isinstance(old, Mapping) and isinstance(value, Mapping):
            merged[key] = {**old, **value}
        else:
            merged[key] = value
    return merged
