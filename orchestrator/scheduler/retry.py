"""Queueing an ended task again on a person's word, from any process: ``request_retry`` and
``request_rebase`` (the issue's ``/council retry`` and ``/council rebase``).

Contract:

- ``request_retry(store, task_id)``: a task that ended ``failed``, ``conflict`` or
  ``cancelled`` is queued again as a fresh start of its failure count: status ``queued``,
  its error, end time and phase cleared, and its retry bookkeeping dropped (failed attempts,
  rechecks, empty builds, the retry's note and back-off, its outcome, its parks, its resolve
  rounds, its lost worktrees), so the retry policy gives it its whole allowance again. Its
  work stays: a task that kept its worktree (a failed one) continues in it as a retry does;
  one whose worktree was retired (cancelled) starts a new one, its old branch left as it was.
  A cancel request still on record for it is dropped first (it was carried out). A task that
  has not ended raises ``RequeueError`` ("nothing to retry"), and so does one that is
  ``done`` (its work landed); an unknown task raises ``RecordNotFound``.
- ``request_rebase(services, task_id)``: a task whose pull request is open, waiting
  ``in_review`` or ended ``conflict`` after its resolve round, goes through a resolve round
  asked for by a person (``pulls.outcomes.resolve_round``, the follower's own write): built
  again on the remote's base as it is now and pushed to the same pull request. It counts as
  a resolve round (one more conflict at the merge then ends it ``conflict``, for a person to
  ask again). A task without an open pull request raises ``RequeueError`` saying why.

Both are one compare-and-set on the task's version, read again when another write came
first (as ``cancel.request_cancel``). A running scheduler takes the task up by itself: the
write reaches its view of the tasks (``view``) on its next tick, and the dispatcher starts
every ``queued`` task of the run whatever it was before. A run that is not serving may have
ended already: the task then waits ``queued`` for `council resume`.
"""

from __future__ import annotations

from typing import Any

from orchestrator.errors import RecordNotFound, RequeueError, RunError, VersionConflict
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState, TaskStatus
from orchestrator.scheduler.cancel import clear_cancel
from orchestrator.scheduler.context import Services
from orchestrator.scheduler.pulls.outcomes import resolve_round
from orchestrator.state.protocol import StateStore
from orchestrator.task_meta import TaskMeta

__all__ = ["RETRIED", "RETRY_KEYS", "open_pull", "request_rebase", "request_retry"]

RETRIED = frozenset({TaskStatus.FAILED, TaskStatus.CONFLICT, TaskStatus.CANCELLED})
_CAS_TRIES = 20


def _clear_counts(meta: TaskMeta) -> None:
    """The metadata a retry's count is kept in: gone, the retry policy counts from nothing
    again."""
    retry, park = meta.retry, meta.park
    retry.failures = retry.rechecks = retry.empty_builds = retry.resolve_rounds = None
    retry.retry_note = retry.outcome = retry.not_before = retry.conflicts = None
    park.parks = park.until = park.adapter = park.since = meta.worktree.losses = None


def _retry_keys() -> frozenset[str]:
    """The keys ``_clear_counts`` drops: the fields it sets."""
    meta = TaskMeta.read({})
    _clear_counts(meta)
    parts = (getattr(meta, name) for name in TaskMeta.parts())
    return frozenset(
        info.alias or name
        for part in parts
        for name, info in type(part).model_fields.items()
        if name in part.model_fields_set
    )


RETRY_KEYS = _retry_keys()  # the metadata a retry's count is kept in


async def request_retry(store: StateStore, task_id: str) -> TaskState:
    """Queue the ended task ``task_id`` again (module doc); its state afterwards."""
    for _ in range(_CAS_TRIES):
        state = await _read(store, task_id)
        if state.status not in TERMINAL_TASK_STATUSES:
            raise RequeueError(f"task {task_id!r} has not ended ({state.status}): nothing to retry")
        if state.status not in RETRIED:
            raise RequeueError(f"task {task_id!r} is done (its work landed): nothing to retry")
        await clear_cancel(store, task_id)
        try:
            return await store.update_task_state(
                task_id, retried_updates(state), expected_version=state.version
            )
        except VersionConflict:
            continue  # written meanwhile: look again
    raise RunError(f"task {task_id!r} kept changing; it was not queued again")


def retried_updates(state: TaskState) -> dict[str, Any]:
    """The write that queues the ended ``state`` again with its whole retry allowance."""
    meta = TaskMeta.read(state.metadata)
    _clear_counts(meta)
    return {
        "status": TaskStatus.QUEUED,
        "current_phase": None,
        "finished_at": None,
        "error": None,
        "metadata": meta.dump(),
    }


def open_pull(state: TaskState) -> dict[str, Any] | None:
    """The pull request of ``state`` as recorded, when it is open and the task waits on it
    (``in_review``) or ended ``conflict`` with it; else None."""
    seen = TaskMeta.read(state.metadata).pull.pull
    if state.status not in (TaskStatus.IN_REVIEW, TaskStatus.CONFLICT):
        return None
    if seen is None or seen.number is None:
        return None
    return seen.dump() if seen.state in (None, "open") else None


async def request_rebase(services: Services, task_id: str) -> TaskState:
    """A resolve round for ``task_id``'s open pull request, asked for (module doc); its
    state afterwards."""
    store = services.store
    for _ in range(_CAS_TRIES):
        state = await _read(store, task_id)
        pull = open_pull(state)
        if pull is None:
            raise RequeueError(_no_pull(state))
        rounds = (TaskMeta.read(state.metadata).retry.resolve_rounds or 0) + 1
        why = (
            f"a rebase of pull request #{pull['number']} was asked for: building again on "
            f"{services.config.base_branch}"
        )
        try:
            return await resolve_round(services, state, pull, rounds, why)
        except VersionConflict:
            continue
    raise RunError(f"task {task_id!r} kept changing; it was not rebased")


async def _read(store: StateStore, task_id: str) -> TaskState:
    state = await store.get_task_state(task_id)
    if state is None:
        raise RecordNotFound(f"there is no task {task_id!r}")
    return state


def _no_pull(state: TaskState) -> str:
    """Why the task ``state`` has no open pull request to rebase."""
    seen = TaskMeta.read(state.metadata).pull.pull
    number = seen.number if seen is not None else None
    if number is None:
        if state.status in TERMINAL_TASK_STATUSES:
            return f"it ended {state.status} without a pull request: nothing to rebase"
        return f"it has no pull request yet ({state.status}): its landing opens one on the base"
    recorded = seen.state if seen is not None else None
    if recorded not in (None, "open"):
        return f"its pull request #{number} is {recorded}: nothing to rebase"
    return (
        f"its pull request #{number} is being worked on ({state.status}): its next push "
        "builds on the base as it is then"
    )
