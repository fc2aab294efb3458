"""The run's spending in the scheduler: the spend gate every attempt's calls pass
(``orchestrator.spend.gate``), asked again before an attempt starts, and what a budget spent
does to the run.

- **Before dispatch** (``hold``): a task whose next call has no room in a budget is not
  started (its wait says which budget, in the live view and ``status``); one whose adapter's
  quota cannot carry it is not started there either: its adapter is held until the reset
  (``AdapterParks.hold``), so the task goes to a fallback adapter or waits. Either hold is kept
  on the task's record (``mark``: ``TaskMeta.hold``; ``status`` reads them from any
  process) and said once (``call.held``), and cleared when its call starts.
- **A held attempt** (``WorkflowStatus.HELD``: the gate refused a later phase's call) goes
  back to the queue uncounted, its work committed on its branch (``Settler``).
- **The run's end**: a task held by a budget is settled for ``council run``, which ends
  ``interrupted`` (resumable: raise the budget, ``council resume``) with the budget named;
  ``council serve`` waits for a raise instead. ``budgets.on_exceed: stop`` stops the run at
  the first spent budget, as a Ctrl-C would (resumable).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.models import TaskState, TaskStatus
from orchestrator.process import procid
from orchestrator.scheduler.attempts.adapter_parks import AdapterParks
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.candidates import candidate_settled, candidates_of
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.ending import after_waiting
from orchestrator.scheduler.parts import RunPart
from orchestrator.scheduler.rules.queue import first_phase
from orchestrator.scheduler.settling import settle_left_open
from orchestrator.spend.budgets import Exceeded
from orchestrator.spend.gate import CallPlan, Hold, SpendGate
from orchestrator.state.carried import Carrier
from orchestrator.task_meta import TaskMeta

__all__ = ["BudgetEnd", "Spending"]


_CANDIDATE = re.compile(r"^(?P<task>.+)\.c\d+$")
_TEAM_REFRESH = 5.0  # seconds between reads of a team's ledger


def _alive(who: Mapping[str, Any]) -> bool | None:
    """Whether the process a fund holder's record names still runs (None: another machine's,
    its lease decides; ``spend.reservations``)."""
    proc = procid.ProcessId.from_dict(dict(who))
    return None if proc is None else procid.is_alive(proc)


class Spending:
    def __init__(self, run: RunContext, parks: AdapterParks, stop: Callable[[], None]) -> None:
        self._run = run
        self._parks = parks
        self._stop = stop
        self.gate: SpendGate | None = None
        self.stopped_by: str | None = None  # the budget that stopped the run (on_exceed: stop)

    async def open(self, session_id: str) -> SpendGate:
        """The run's gate, reading the ledger as it stands (a resume's included)."""
        services = self._run.services
        self.gate = gate = SpendGate(
            services.store,
            services.config,
            session_id,
            budget_task=self.budget_task,
            parked_until=self._parks.until,
            on_exceeded=self._exceeded,
            refresh=_TEAM_REFRESH if services.team is not None else None,
            who=procid.current().as_dict() if services.team is not None else None,
            alive=_alive,
            host=procid.current().host,
        )
        gate.line_carried = True  # by a phase's completion (``BudgetEnd.phase_ending``)
        await gate.load()
        await settle_left_open(services, gate)  # calls a dead orchestrator left open
        return gate

    def budget_task(self, task_id: str) -> str:
        """The task whose budget a call of ``task_id`` counts to: a council candidate's is its
        council task's."""
        found = _CANDIDATE.match(task_id)
        if found is not None and found["task"] in self._run.council_tasks():
            return found["task"]
        return task_id

    async def refresh(self) -> None:
        if self.gate is not None:
            await self.gate.refresh()

    def hold(self, task_id: str, adapter: str, phase: str, now: datetime) -> Hold | None:
        """What holds ``task_id``'s next call (``phase`` on ``adapter``) back now: a quota (its
        adapter is then held until the reset) or a budget; None when it may start."""
        gate = self.gate
        if gate is None:
            return None
        hold = gate.holding(task_id, adapter, phase, now)
        if hold is not None and hold.until is not None:
            self._parks.hold(adapter, hold.until)
        return hold

    def held_by_budget(self, state: TaskState) -> bool:
        """``state``'s task waits for a budget to be raised: its record says so, and the
        budget still has no room for its next call (a raised one lets it start)."""
        held = TaskMeta.read(state.metadata).hold.held
        if state.status != TaskStatus.QUEUED or held is None or self.gate is None:
            return False
        task = self._run.tasks.get(state.task_id) or self._candidate(state.task_id)
        if task is None:
            return False
        config, gate = self._run.services.config, self.gate
        phase = first_phase(config, task, state)
        # Held while no adapter the phase it waits in may use has room (an adapter's budget
        # leaves its fallbacks); that phase's, not the task's first phase's: a task held in its
        # build on another adapter than its plan's is held by the build's.
        chain = config.adapter_chain(task, config.phase(phase))
        return bool(chain) and all(gate.exceeded(task.id, a, phase) is not None for a in chain)

    def waits_for_budget(self, task_id: str, states: Mapping[str, TaskState]) -> bool:
        """Task ``task_id`` can go on only once a budget is raised: held itself, or, for a
        council task, each of its candidates either held or settled (and one held)."""
        task = self._run.tasks.get(task_id)
        if task is not None and task.council:
            members = [states.get(m.id) for m in candidates_of(task)]
            held = [m for m in members if m is not None and self.held_by_budget(m)]
            return bool(held) and all(
                m is not None and (m in held or candidate_settled(m)) for m in members
            )
        state = states.get(task_id)
        return state is not None and self.held_by_budget(state)

    def held_ids(self, tasks: Iterable[TaskConfig], states: Mapping[str, TaskState]) -> set[str]:
        """The ids of the records that wait for a budget: each held task, and a held council
        task's candidates."""
        held: set[str] = set()
        for task in tasks:
            if self.waits_for_budget(task.id, states):
                held.add(task.id)
                if task.council:
                    held.update(member.id for member in candidates_of(task))
        return held

    def _candidate(self, task_id: str) -> TaskConfig | None:
        found = _CANDIDATE.match(task_id)
        parent = self._run.council_tasks().get(found["task"]) if found is not None else None
        if parent is None:
            return None
        return next((c for c in candidates_of(parent) if c.id == task_id), None)

    async def mark(
        self, state: TaskState, hold: Hold | None, adapter: str = "", phase: str = ""
    ) -> TaskState:
        """Keep what holds ``state``'s task back in its record (``hold.held``, and ``held_until``
        for a quota's reset: ``status`` reads them from any process), written only when it
        changes, and say it once (``call.held``: ``SpendGate.held``); None: nothing holds it
        any more (its call may start), which clears both. The record as it is now."""
        if hold is None and self.gate is not None:
            self.gate.released(state.task_id)
        reason = hold.reason if hold is not None else None
        until = hold.until if hold is not None else None
        if hold is not None and self.gate is not None:
            await self.gate.held(CallPlan(state.task_id, phase, adapter), hold)
        meta = TaskMeta.read(state.metadata)
        if meta.hold.held == reason and meta.hold.held_until == until:
            return state
        meta.hold.held, meta.hold.held_until = reason, until
        update = {"metadata": meta.dump()}
        return await self._run.services.store.update_task_state(state.task_id, update)

    async def publish(self, states: list[TaskState]) -> None:
        """Keep the run's final spend line (its end), naming the budget it waits for."""
        if self.gate is None:
            return
        held = next(
            (str(TaskMeta.read(s.metadata).hold.held) for s in states if self.held_by_budget(s)),
            self.stopped_by,
        )
        await self.gate.publish(force=True, held=held)

    async def _exceeded(self, over: Exceeded, task: str | None) -> None:
        if self._run.services.config.budgets.on_exceed == "stop" and not self._run.stopping:
            self.stopped_by = over.message()
            self._stop()


class BudgetEnd(RunPart):
    """The budgets as a part of the run (``parts.RunPart``): the ledger read again each tick
    (``Spending.refresh``), and their say in how a run ends: a task a budget holds, or one
    that waits behind it, waits for a raise; a run that ends with any ends ``interrupted`` on
    the checkpoint ``budget``, on every workstation of a team (the budget is the team's)."""

    checkpoint = "budget"
    shared = True

    def __init__(self, spending: Spending, run: RunContext) -> None:
        self._spending = spending
        self._run = run

    def waits(
        self,
        task_id: str,
        states: Mapping[str, TaskState],
        depends_on: Mapping[str, Sequence[str]],
    ) -> bool:
        spending = self._spending

        def held(state: TaskState) -> bool:
            return spending.waits_for_budget(state.task_id, states)

        return spending.waits_for_budget(task_id, states) or after_waiting(
            task_id, depends_on, states, held
        )

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        await self._spending.refresh()

    def phase_ending(self, attempt: Attempt) -> Sequence[Carrier]:
        """The run's spend line, when due, carried by the phase's completion: its call's
        close left it to that store call (``SpendGate.carried_line``)."""
        gate = self._spending.gate
        carrier = gate.carried_line() if gate is not None else None
        return (carrier,) if carrier is not None else ()

    def holds(self, states: Mapping[str, TaskState]) -> set[str]:
        return self._spending.held_ids(self._run.tasks.values(), states)
