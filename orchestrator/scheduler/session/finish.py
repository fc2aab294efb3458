"""How a run's end is recorded, once the tick has ended it (``ending`` decides how).

``finish`` keeps the run's final spend line and writes the session's end. A run that ends by
itself reads the session's tasks once for it (with the candidates of its council tasks); a
stopped one reads none: its spend line (for reports only) is told from the records as the
scheduler's last tick saw them, and its checkpoint reads every record itself, so a stop of a
run of 10,000 tasks reads them once less. Each checkpoint is given the records the end holds
(``StateStore.create_checkpoint(known=)``): the file store parses again only a record whose
file is not exactly the one held (written since by anyone, or a light copy of the view's):

- ended by another workstation, its tasks taken over by a later run (``session.reading``):
  this one only leaves (``run.left``);
- stopped (``stop()``, Ctrl-C): ``interrupted`` with a checkpoint (none when killed), unless
  other workstations of the team go on with it: then this one only leaves (``run.left``), its
  tasks back in the queue; the run's report is then built from the records that checkpoint
  read (``RunContext.stop_checkpoint``), not from a second read of every one. What must be
  written is written first: the session's ``interrupted`` (what ``council resume`` reads), the
  checkpoint, ``run.interrupted``; the spend line, for reports only, last;
- else ``ending.decide`` from what every part says, on that one read: the session's status and
  checkpoint (``council resume`` goes on from it), or, in a team whose other workstations go on
  with tasks of theirs, this workstation leaves.

**How long the end waits** (``Patience``) is bounded by the store's answers, not by one clock
for the whole end. Each store call of the end is one step; the end waits for each step's
answer, and gives up (``StoreUnavailable``, which the scheduler logs) when a step is not
answered within its bound or the store says it cannot be reached: then no later step asks a
store that has just failed to answer. The bound of a step is ``UNHEARD`` (5 s: the PostgreSQL
store's own retry deadline, ``state.postgres.outages.DEADLINE``) while the store has not been
heard lately (the run's last tick found it unreachable), so a stop with the store away ends as
promptly as before; once the store has answered (the last tick, or a step of the end), each
step has ``HEARD`` (30 s: past the connection's own limits, ``state.postgres.connection``,
which end a call to a server that went silent), so a slow, loaded machine writes its
checkpoint and ``run.interrupted`` however long the end takes as a whole (one clock of 5 s
for the whole end dropped them at load 20). A second Ctrl-C (``Scheduler.kill``) cuts the end
where it stands.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Awaitable, Mapping
from typing import TypeVar

import anyio

from orchestrator.errors import CouncilError, StoreUnavailable
from orchestrator.events.runs import RunFinished, RunInterrupted, RunLeft
from orchestrator.models import SessionStatus, TaskState
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.council.members import CouncilMembers
from orchestrator.scheduler.ending import decide
from orchestrator.scheduler.parts import RunParts
from orchestrator.scheduler.session.opening import Opening
from orchestrator.scheduler.spending import Spending

__all__ = ["HEARD", "UNHEARD", "Patience", "finish"]

T = TypeVar("T")

log = logging.getLogger(__name__)

UNHEARD = 5.0  # seconds a step waits while the store has not been heard lately (module doc)
HEARD = 30.0  # seconds a step waits once the store has answered (module doc)
PARTS_LEFT = 5.0  # seconds the parts have to hear that the run's loop is over (``RunParts.left``)


class Patience:
    """How long each store call of the run's end waits for its answer (module doc): the bound
    of an unheard store (``heard`` False: the last tick found it unreachable) until the first
    answer, then the bound of a heard one; the module's values at the time it is made."""

    def __init__(self, *, heard: bool) -> None:
        self._heard = HEARD
        self.bound = HEARD if heard else UNHEARD

    async def answer(self, call: Awaitable[T]) -> T:
        """``call``'s answer; ``StoreUnavailable`` when none came within the bound (the call
        is cancelled where it stands)."""
        bound = self.bound
        with anyio.move_on_after(bound):
            answered = await call
            self.bound = self._heard
            return answered
        raise StoreUnavailable(f"the state store did not answer the run's end within {bound:g}s")


class RunEnd:
    """The run's end as the scheduler records it once its loop is over: shielded from the
    caller's cancellation, each store call waiting for its answer as ``Patience`` says, not
    one clock for the whole end; only ``cut`` (a kill) ends it where it stands. The parts
    then hear the loop is over, within ``PARTS_LEFT``."""

    def __init__(self) -> None:
        self._scope: anyio.CancelScope | None = None

    def cut(self) -> None:
        """End the run's end where it stands, if it is being recorded: the user's word is now."""
        if self._scope is not None:
            self._scope.cancel()

    async def record(
        self,
        run: RunContext,
        parts: RunParts,
        *,
        opening: Opening,
        members: CouncilMembers,
        spending: Spending,
        seen: Mapping[str, TaskState],
        heard: bool,
    ) -> None:
        """``finish``, bounded as an unheard store's when ``heard`` is False (the last tick
        found the store unreachable)."""
        with anyio.CancelScope(shield=True):
            try:
                with anyio.CancelScope() as self._scope:
                    await finish(
                        run,
                        parts,
                        opening=opening,
                        members=members,
                        spending=spending,
                        seen=seen,
                        patience=Patience(heard=heard),
                    )
            except StoreUnavailable as exc:
                # This workstation is done; the session's own end is recorded by whoever
                # finishes next, or by `council run`/`resume` once the database is back.
                log.warning("the end of the run could not be recorded: %s", exc)
            finally:
                self._scope = None
                with anyio.move_on_after(PARTS_LEFT):
                    await parts.left()


async def finish(
    run: RunContext,
    parts: RunParts,
    *,
    opening: Opening,
    members: CouncilMembers,
    spending: Spending,
    seen: Mapping[str, TaskState],
    patience: Patience,
) -> None:
    """Record the run's end (module doc); ``seen``: the records as the last tick read them;
    each store call waits for its answer as ``patience`` says."""
    assert run.session_id is not None
    store = run.services.store
    answer = patience.answer
    if run.ended_elsewhere:
        # Another workstation recorded the session's end, and a later run has its tasks.
        await answer(run.events.emit(RunLeft(session_id=run.session_id)))
        return
    if run.stopping and await answer(opening.others_in(run.session_id)):
        # The team goes on without this workstation: its tasks are back in the queue.
        await answer(run.events.emit(RunLeft(session_id=run.session_id)))
        return
    if run.stopping:
        session = await answer(
            store.update_session(
                run.session_id, {"status": SessionStatus.INTERRUPTED}, metrics=False
            )
        )
        if not run.killed:
            # Of the records as the last tick saw them, and the session as just written, each
            # taken where its file holds exactly it: a stop of 10,000 tasks parses only those
            # written since.
            checkpoint = store.create_checkpoint(
                run.session_id, "interrupted", known=seen, session=session
            )
            made = await answer(checkpoint)
            run.stop_checkpoint = made.checkpoint_id  # the report's source (module doc)
        await answer(run.events.emit(RunInterrupted(session_id=run.session_id)))
        with contextlib.suppress(CouncilError):  # the spend line is for reports only
            await answer(spending.publish(list(seen.values())))
        return
    states = await answer(store.list_tasks(run.session_id))
    by_id = {s.task_id: s for s in states}
    run.final_tasks = by_id  # what the run's report need not read again (``RunContext``)
    await answer(members.add_states(run.tasks.values(), by_id))  # council candidates
    with contextlib.suppress(CouncilError):  # the spend line is for reports only
        await answer(spending.publish(list(by_id.values())))
    own = {s.task_id: s for s in states}
    end = decide(own, parts.parts, team=run.services.team is not None, seen=by_id)
    if end.status is None:
        # A team session with tasks other workstations go on with: theirs to finish.
        await answer(run.events.emit(RunLeft(session_id=run.session_id)))
        return
    if end.checkpoint is not None:  # `council resume` goes on from it
        await answer(store.create_checkpoint(run.session_id, end.checkpoint, known=by_id))
    await answer(store.update_session(run.session_id, {"status": end.status}, metrics=False))
    await answer(run.events.emit(RunFinished(session_id=run.session_id, status=end.status)))
