"""Holds end as the README says, whatever phase and adapter hold them (issue 48): over random
workflows (phases pinned to adapters of their own or not, adapters with fallbacks, tasks with
adapters of their own), random completed phases and random spent budgets (an adapter's, or
the run's: every adapter), the end of the run (``Spending.held_by_budget``) and the dispatcher
(``dispatcher._first_room``) agree with the rule, worked out here from the config as a person
reads it: the call the task waits for is its next phase's, on that phase's adapter (the
task's own list, else the phase's ``adapter``, else the default) or a fallback of it; the
task is held while none of those has room. A build pinned to another adapter than the plan's
used to be judged by the plan's adapter: the run waited for ever."""

from __future__ import annotations

from datetime import UTC, datetime
from types import SimpleNamespace
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from orchestrator.config.run import RunConfig
from orchestrator.models import PhaseRecord, PhaseStatus, TaskState, TaskStatus
from orchestrator.scheduler.dispatcher import _first_room
from orchestrator.scheduler.spending import Spending
from orchestrator.spend.holds import Hold

ADAPTERS = ("a", "b", "c")
NOW = datetime(2026, 1, 1, tzinfo=UTC)


class SpentGate:
    """The gate's two answers the hold rules read, with ``spent`` adapters out of room."""

    def __init__(self, spent: frozenset[str]) -> None:
        self.spent = spent

    def exceeded(self, task: str, adapter: str, phase: str) -> object | None:
        return "spent" if adapter in self.spent else None

    def holding(self, task: str, adapter: str, phase: str, now: datetime) -> Hold | None:
        if adapter not in self.spent:
            return None
        return Hold("budget", f"adapter:{adapter}", f"budget: {adapter} spent", None)


@st.composite
def worlds(draw: st.DrawFn) -> dict[str, Any]:
    fallbacks = {
        name: draw(st.lists(st.sampled_from([x for x in ADAPTERS if x != name]), unique=True))
        for name in ADAPTERS
    }
    phases = [
        {"name": f"p{n}", "adapter": draw(st.none() | st.sampled_from(ADAPTERS))}
        for n in range(draw(st.integers(1, 3)))
    ]
    own = draw(st.none() | st.lists(st.sampled_from(ADAPTERS), min_size=1, unique=True))
    done = draw(st.integers(0, len(phases) - 1))
    run_spent = draw(st.booleans())
    spent = ADAPTERS if run_spent else draw(st.lists(st.sampled_from(ADAPTERS), unique=True))
    return {
        "fallbacks": fallbacks,
        "phases": phases,
        "own": own,
        "done": done,
        "spent": frozenset(spent),
        "default": draw(st.sampled_from(ADAPTERS)),
    }


def expected_callers(world: dict[str, Any]) -> list[str]:
    """Who may make the call of the phase the task waits in, read from the config."""
    if world["own"] is not None:
        return list(world["own"])
    phase = world["phases"][world["done"]]
    primary = phase["adapter"] or world["default"]
    return [primary, *(f for f in world["fallbacks"][primary] if f != primary)]


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_the_end_and_the_dispatcher_hold_a_task_by_the_phase_it_waits_in(
    world: dict[str, Any],
) -> None:
    adapters = {
        name: {"type": "scripted", "fallback": world["fallbacks"][name]} for name in ADAPTERS
    }
    phases = [{k: v for k, v in p.items() if v is not None} for p in world["phases"]]
    task: dict[str, Any] = {"id": "t1", "prompt": "p"}
    if world["own"] is not None:
        task["adapters"] = world["own"]
    config = RunConfig.model_validate(
        {
            "repo": ".",
            "adapters": adapters,
            "default_adapter": world["default"],
            "workflow": {"phases": phases},
            "tasks": [task],
        }
    )
    services = SimpleNamespace(config=config, team=None)
    run = SimpleNamespace(services=services, tasks={"t1": config.tasks[0]})
    run.council_tasks = dict
    spending = Spending(run, parks=SimpleNamespace(), stop=lambda: None)  # type: ignore[arg-type]
    spending.gate = SpentGate(world["spent"])  # type: ignore[assignment]
    completed = {
        p["name"]: PhaseRecord(name=p["name"], status=PhaseStatus.COMPLETED)
        for p in world["phases"][: world["done"]]
    }
    state = TaskState(
        task_id="t1", status=TaskStatus.QUEUED, phases=completed, metadata={"held": "budget: x"}
    )
    callers = expected_callers(world)
    held = all(adapter in world["spent"] for adapter in callers)
    assert spending.held_by_budget(state) is held, (world, callers)
    phase = world["phases"][world["done"]]["name"]
    calls = config.adapter_chain(config.tasks[0], config.phase(phase))
    hold, _ = _first_room(spending, "t1", calls, phase, NOW)
    assert (hold is not None) is held, (world, calls)
