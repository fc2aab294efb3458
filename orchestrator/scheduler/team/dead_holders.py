"""Claims a dead workstation of this host left behind, given back at once on a team resume.

A team's resume takes back only claims whose lease lapsed: a workstation that is merely quiet
keeps what it holds. But a workstation of this host whose process is gone (killed, crashed, its
machine's power cut and back) is not quiet: this host can tell it is dead
(``presence.gone_here``: the same host and pid namespace, and no process of that pid and start
time). Its claims go back to the queue at once, if no process runs under its pid now (a live
workstation that was given the pid since holds claims under the same ``host:pid``), each by a
compare-and-set on the task's version (a task someone changed meanwhile is theirs), said as
``task.swept``; without this the resume waited out the lease (``scheduler.stale_threshold``, 300
s by default) although the holder was known dead. Its CLIs were stopped before
(``Sweeper.stop_orphans``), so nothing it started still writes to the work.
"""

from __future__ import annotations

from orchestrator.errors import VersionConflict
from orchestrator.events.tasks import TaskSwept
from orchestrator.models import TaskStatus, utcnow
from orchestrator.process import procid
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.team.presence import NAMESPACE, gone_here
from orchestrator.state.session_rules import recovery_updates

__all__ = ["release_dead_holders"]


async def release_dead_holders(run: RunContext, session_id: str) -> list[str]:
    """Give back the live claims in ``session_id`` held by a workstation of this host known
    gone (module doc); the ids of the tasks given back."""
    store = run.services.store
    gone = {
        (record.data.get("host"), record.data.get("pid"))
        for record in await store.list_records(NAMESPACE)
        if gone_here(record)
    }
    if not gone:
        return []
    now, freed = utcnow(), []
    for task in await store.list_tasks(session_id):
        claim = task.claim
        if claim is None or not claim.is_live(now):
            continue
        holder = _holder(claim.holder)
        if holder is None or holder not in gone:
            continue
        if procid.is_alive(procid.ProcessId(holder[1], holder[0], "")) is not False:
            continue  # its pid runs again (reused since): whose claim this is, unknown
        fix = recovery_updates(task, now, force=True)
        if not fix:
            continue
        try:
            await store.update_task_state(task.task_id, fix, expected_version=task.version)
        except VersionConflict:
            continue  # changed meanwhile: whoever changed it owns what happens next
        await run.events.emit(
            TaskSwept(task_id=task.task_id, holder=claim.holder, status=TaskStatus.QUEUED)
        )
        freed.append(task.task_id)
    return freed


def _holder(holder: str) -> tuple[str, int] | None:
    """``(host, pid)`` of a claim's holder (``<host>:<pid>:<run>``), None for another shape."""
    host, _, rest = holder.partition(":")
    pid = rest.partition(":")[0]
    return (host, int(pid)) if pid.isdigit() else None
