"""Whether another orchestrator still runs a session: the process recorded as running it (pid,
host and start time, so a reused pid is not mistaken for it) or holding one of its live claims.
While it is alive, the session is not taken over: it may hold no claim right now (every task
parked on a rate limit, or waiting for a dependency) and still dispatch the next moment."""

from __future__ import annotations

from orchestrator.errors import RunError
from orchestrator.models import (
    SessionStatus,
)
from orchestrator.process import procid
from orchestrator.scheduler.context import ORCHESTRATOR
from orchestrator.state.protocol import StateStore

__all__ = ["refuse_if_alive"]


async def refuse_if_alive(store: StateStore, session_id: str) -> None:
    """``RunError`` while another live orchestrator runs session ``session_id``."""
    session = await store.get_session(session_id, metrics=False)
    if session is None:
        return  # recover_session restores it from a checkpoint, or says why not
    recorded = session.metadata.get(ORCHESTRATOR)
    proc = procid.ProcessId.from_dict(recorded) if isinstance(recorded, dict) else None
    if (
        proc is not None
        and proc != procid.current()
        and session.status == SessionStatus.ACTIVE
        and procid.is_alive(proc) is not False
    ):
        # It may hold no claim right now (every task parked on a rate limit, or waiting
        # for a dependency) and still dispatch the next moment: two orchestrators would
        # then run the same tasks.
        raise RunError(
            f"session {session_id!r} is still being run by process {proc.pid} on "
            f"{proc.host}; stop that process first, or let it finish"
        )
    for task in await store.list_tasks(session_id):
        claim = task.claim
        if claim is None or not claim.is_live() or proc is None:
            continue
        if claim.holder.split(":")[:2] != [proc.host, str(proc.pid)]:
            continue
        if proc == procid.current():
            continue  # an earlier scheduler of this very process: stopped, not running
        if procid.is_alive(proc) is not False:
            raise RunError(
                f"session {session_id!r} is still being run by process {proc.pid} on "
                f"{proc.host} (it holds task {task.task_id!r}); stop that process first"
            )
