"""``council cancel FILE TASK``: end one task of an unfinished run for good.

The task belongs to the newest active or interrupted session of FILE's repository (or to
``--session``). The cancel is ``request_cancel`` (``orchestrator.scheduler.cancel``): a task
nobody works on (queued or parked) is ``cancelled`` at once and never started; a running one
is cancelled by the orchestrator running its session at its next tick (the CLI's work is
committed on the task's branch, which is kept), or, when that orchestrator is gone, by
``council resume`` first thing. The command says which of these happened.

A task waiting ``in_review`` is cancelled at once, and its pull request is closed with a
comment saying why (its branch stays on the remote): an open pull request nobody follows any
more would otherwise wait for a review that leads nowhere. When the forge cannot be reached,
the cancel stands, the command says the pull request is still open, and the next run or
resume of the session closes it (``pulls.cancelled``, which closes the pull request of a task
cancelled any other way too, ``Council.cancel`` included).

Exit codes: 0 the task is cancelled or its cancel is requested, 2 the task is not part of the
session (or is no valid id), 1 it already ended or there is no unfinished run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import file_and, split_file_and
from orchestrator.cli.store_access import open_store, pick_session, running_process
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.council import request_cancel
from orchestrator.errors import CouncilError, RunError, UsageError
from orchestrator.ids import check_id
from orchestrator.models import TaskState, TaskStatus
from orchestrator.process import procid
from orchestrator.run.stores import describe_state
from orchestrator.scheduler.pulls.cancelled import close_cancelled_pull, open_pull_of_cancelled
from orchestrator.state.protocol import StateStore

__all__ = ["cancel"]


@dataclass(frozen=True)
class CancelOutcome:
    task_id: str
    session_id: str
    previous_status: TaskStatus
    action: str  # "cancelled" (done), or "requested" (its orchestrator or a resume ends it)
    process: procid.ProcessId | None  # the live orchestrator that will end it
    pull: int | None = None  # the task's pull request, closed with it
    pull_left_open: str | None = None  # why it could not be closed

    def as_dict(self) -> dict[str, Any]:
        return {
            "task_id": self.task_id,
            "session_id": self.session_id,
            "previous_status": str(self.previous_status),
            "action": self.action,
            "process": self.process.as_dict() if self.process else None,
            "pull_closed": self.pull if self.pull_left_open is None else None,
            "pull_left_open": self.pull_left_open,
        }


def cancel(
    args: Annotated[list[str], file_and("TASK", "the id of the task.")],
    session: Annotated[
        str | None, typer.Option("--session", help="Session id (default: the newest unfinished).")
    ] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the outcome as JSON.")] = False,
) -> None:
    """Cancel TASK of the newest unfinished run of FILE."""
    file, task = split_file_and(args, "cancel", "TASK")
    config = load_config(file)
    outcome = event_loop.run(_cancel, config, check_id(task, "task id"), session)
    if as_json:
        console.print_lines(json.dumps(outcome.as_dict(), indent=2))
    elif outcome.action == "cancelled":
        console.print_success(
            f"cancelled task {outcome.task_id} of session {outcome.session_id} "
            f"(it was {outcome.previous_status})"
        )
        if outcome.pull is not None and outcome.pull_left_open is None:
            console.print_success(f"closed its pull request #{outcome.pull}; its branch stays")
        elif outcome.pull is not None:
            console.print_warning(
                f"its pull request #{outcome.pull} is still open: {outcome.pull_left_open}"
            )
    elif outcome.process is not None:
        proc = outcome.process
        console.print_success(
            f"asked process {proc.pid} on {proc.host} to cancel task {outcome.task_id} "
            f"({outcome.previous_status}); it stops the task at its next tick and keeps the work "
            "on the task's branch"
        )
    else:
        console.print_success(
            f"cancel of task {outcome.task_id} ({outcome.previous_status}) recorded: no "
            f"orchestrator runs session {outcome.session_id} now; `council resume {file}` "
            "carries it out first thing"
        )


async def _cancel(config: RunConfig, task_id: str, session_id: str | None) -> CancelOutcome:
    async with open_store(config) as store:
        try:
            session = await pick_session(
                store, session_id, unfinished=True, place=describe_state(config), config=config
            )
        except RunError:
            # Every run ended: a task no run has is still an unknown name (exit 2), said
            # before that there is nothing left to cancel (exit 1).
            newest = await pick_session(store, None, unfinished=False, config=config)
            if task_id not in newest.task_ids:
                known = ", ".join(newest.task_ids) or "none"
                raise UsageError(
                    f"task {task_id!r} is not part of session {newest.session_id} "
                    f"(its tasks: {known})"
                ) from None
            raise
        sid = session.session_id
        before = await store.get_task_state(task_id)
        if task_id not in session.task_ids or before is None or before.session_id != sid:
            known = ", ".join(session.task_ids) or "none"
            raise UsageError(f"task {task_id!r} is not part of session {sid} (its tasks: {known})")
        after = await request_cancel(store, task_id)
        if after.status == TaskStatus.CANCELLED:
            outcome = CancelOutcome(task_id, sid, before.status, "cancelled", None)
            if before.status == TaskStatus.IN_REVIEW:
                outcome = await _close_pull(config, store, after, outcome)
            return outcome
        runner = running_process(session, await store.list_tasks(sid))
        return CancelOutcome(task_id, sid, after.status, "requested", runner)


async def _close_pull(
    config: RunConfig, store: StateStore, state: TaskState, outcome: CancelOutcome
) -> CancelOutcome:
    """Close the cancelled task's open pull request, saying why; recorded on the task."""
    number = open_pull_of_cancelled(state)
    if number is None:
        return outcome
    from orchestrator.forge.connect import connect  # the forge's client: only for this

    try:
        forge = await connect(config.forge, config.repo)
        await close_cancelled_pull(forge, store, state)
    except CouncilError as exc:
        return replace(outcome, pull=number, pull_left_open=str(exc))
    return replace(outcome, pull=number)
