"""A cancelled task's pull request, closed: ``open_pull_of_cancelled`` (the one a cancelled
task left open, as recorded) and ``close_cancelled_pull`` (closed with a comment saying why, its
branch kept, and recorded closed). Every cancel comes here: ``council cancel`` at once, and the
follower (``follower``) of a running or resumed run for one cancelled any other way.

The close is taken by one compare-and-set of the recorded state ``closing`` (``CLOSING``), so
``council cancel`` and a running follower, or two workstations, close it once; one left
``closing`` by a crash is closed again.
"""

from __future__ import annotations

from orchestrator.errors import CouncilError, VersionConflict
from orchestrator.forge.base import Forge
from orchestrator.forge.public_text import own
from orchestrator.models import TaskState, TaskStatus
from orchestrator.scheduler.pulls.landing import PULL
from orchestrator.state.protocol import StateStore

__all__ = ["CLOSING", "close_cancelled_pull", "open_pull_of_cancelled"]

CLOSING = "closing"  # the recorded state of a close under way; ``PullFollower.tried``'s head


def open_pull_of_cancelled(state: TaskState) -> int | None:
    """The number of the pull request a cancelled task left open (or whose close was begun
    and not recorded done), as recorded; else None."""
    pull = state.metadata.get(PULL)
    if state.status != TaskStatus.CANCELLED or not isinstance(pull, dict):
        return None
    number = pull.get("number")
    recorded = pull.get("state")
    return number if isinstance(number, int) and recorded in (None, "open", CLOSING) else None


async def close_cancelled_pull(forge: Forge, store: StateStore, state: TaskState) -> int | None:
    """Close the open pull request of the cancelled task ``state`` with a comment saying why
    (its branch stays), and record it closed: its number, or None when it had none open or
    another process took the close (``council cancel`` and a running follower, or two
    workstations: the one whose compare-and-set of ``closing`` wins comments and closes; one
    found ``closing``, left so by a crash, is closed again). ``CouncilError`` when the forge
    refused or did not answer (recorded open again, so the next look tries again). Every
    cancel comes here: ``council cancel`` at once, the follower of a running or resumed run
    for one cancelled any other way (``Council.cancel``, a cancel the forge missed)."""
    number = open_pull_of_cancelled(state)
    if number is None:
        return None
    if state.metadata[PULL].get("state") != CLOSING:
        taken = await _record_pull_state(store, state, number, CLOSING, only_from_open=True)
        if taken is None:
            return None
        state = taken
    pull = state.metadata[PULL]
    try:
        await forge.comment(
            number,
            own(
                f"Task `{state.task_id}` was cancelled in CLI Council, so this pull request is "
                f"closed; its branch `{pull.get('head') or '-'}` stays."
            ),
        )
        await forge.close(number)
    except CouncilError:
        await _record_pull_state(store, state, number, "open")
        raise
    await _record_pull_state(store, state, number, "closed")
    return number


async def _record_pull_state(
    store: StateStore, state: TaskState, number: int, recorded: str, *, only_from_open: bool = False
) -> TaskState | None:
    """Record the task's pull request ``number`` as ``recorded``, compare-and-set, read again
    after any other write; the task as written, or None when it no longer records that pull
    request (``only_from_open``: or no longer records it open)."""
    while True:
        pull = state.metadata.get(PULL)
        if not isinstance(pull, dict) or pull.get("number") != number:
            return None
        if only_from_open and pull.get("state") not in (None, "open"):
            return None
        waiting = "cancelled" if recorded == "closed" else str(pull.get("waiting", ""))
        meta = {**state.metadata, PULL: {**pull, "state": recorded, "waiting": waiting}}
        try:
            return await store.update_task_state(
                state.task_id, {"metadata": meta}, expected_version=state.version
            )
        except VersionConflict:
            again = await store.get_task_state(state.task_id)
            if again is None:
                return None
            state = again
