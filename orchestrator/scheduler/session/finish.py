"""How a run's end is recorded, once the tick has ended it (``ending`` decides how).

``finish`` keeps the run's final spend line and writes the session's end. A run that ends by
itself reads the session's tasks once for it (with the candidates of its council tasks); a
stopped one reads none: its spend line (for reports only) is told from the records as the
scheduler's last tick saw them, and its checkpoint reads every record itself, so a stop of a
run of 10,000 tasks reads them once less:

- ended by another workstation, its tasks taken over by a later run (``session.reading``):
  this one only leaves (``run.left``);
- stopped (``stop()``, Ctrl-C): ``interrupted`` with a checkpoint (none when killed), unless
  other workstations of the team go on with it: then this one only leaves (``run.left``), its
  tasks back in the queue; the run's report is then built from the records that checkpoint
  read (``RunContext.stop_checkpoint``), not from a second read of every one;
- else ``ending.decide`` from what every part says, on that one read: the session's status and
  checkpoint (``council resume`` goes on from it), or, in a team whose other workstations go on
  with tasks of theirs, this workstation leaves.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from orchestrator.errors import CouncilError
from orchestrator.events.runs import RunFinished, RunInterrupted, RunLeft
from orchestrator.models import SessionStatus, TaskState
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.ending import decide
from orchestrator.scheduler.parts import RunParts
from orchestrator.scheduler.session.opening import Opening
from orchestrator.scheduler.spending import Spending

__all__ = ["finish"]


async def finish(
    run: RunContext,
    parts: RunParts,
    *,
    opening: Opening,
    members: CouncilMembers,
    spending: Spending,
    seen: Mapping[str, TaskState],
) -> None:
    """Record the run's end (module doc); ``seen``: the records as the last tick read them."""
    assert run.session_id is not None
    store = run.services.store
    if run.ended_elsewhere:
        # Another workstation recorded the session's end, and a later run has its tasks.
        await run.events.emit(RunLeft(session_id=run.session_id))
        return
    if run.stopping and await opening.others_in(run.session_id):
        # The team goes on without this workstation: its tasks are back in the queue.
        await run.events.emit(RunLeft(session_id=run.session_id))
        return
    if run.stopping:
        with contextlib.suppress(CouncilError):  # the spend line is for reports only
            await spending.publish(list(seen.values()))
        await store.update_session(
            run.session_id, {"status": SessionStatus.INTERRUPTED}, metrics=False
        )
        if not run.killed:
            made = await store.create_checkpoint(run.session_id, "interrupted")
            run.stop_checkpoint = made.checkpoint_id  # the report's source (module doc)
        await run.events.emit(RunInterrupted(session_id=run.session_id))
        return
    states = await store.list_tasks(run.session_id)
    by_id = {s.task_id: s for s in states}
    run.final_tasks = by_id  # what the run's report need not read again (``RunContext``)
    await members.add_states(run.tasks.values(), by_id)  # council candidates
    with contextlib.suppress(CouncilError):  # the spend line is for reports only
        await spending.publish(list(by_id.values()))
    own = {s.task_id: s for s in states}
    end = decide(own, parts.parts, team=run.services.team is not None, seen=by_id)
    if end.status is None:
        # A team session with tasks other workstations go on with: theirs to finish.
        await run.events.emit(RunLeft(session_id=run.session_id))
        return
    if end.checkpoint is not None:  # `council resume` goes on from it
        await store.create_checkpoint(run.session_id, end.checkpoint)
    await store.update_session(run.session_id, {"status": end.status}, metrics=False)
    await run.events.emit(RunFinished(session_id=run.session_id, status=end.status))
