"""Slot accounting: global, per-adapter and per-phase limits, phases moved by the workflow."""

from __future__ import annotations

from orchestrator.config.sections import CapacityConfig
from orchestrator.scheduler.rules.capacity import Slots


def test_every_limit_is_checked_and_phases_follow_the_workflow() -> None:
    slots = Slots(CapacityConfig(sessions=3, per_adapter={"alpha": 2}, per_phase={"build": 1}))
    slots.take("t1", "alpha", "build")
    assert not slots.free("beta", "build")  # build is full
    assert slots.free("alpha", "scout")
    slots.take("t2", "alpha", "scout")
    assert not slots.free("alpha", "plan")  # alpha is full
    assert slots.free("beta", "plan")
    slots.move("t1", "review")  # the workflow reported t1 left build
    assert slots.free("beta", "build")
    slots.take("t3", "beta", "build")
    assert slots.full() and not slots.free("beta", None)
    assert slots.by_adapter() == {"alpha": 2, "beta": 1}
    assert slots.by_phase() == {"review": 1, "scout": 1, "build": 1}
    slots.give_back("t2")
    assert len(slots) == 2 and slots.free("alpha", "plan")
