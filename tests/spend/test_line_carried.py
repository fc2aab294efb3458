"""The run's spend line carried by a phase's completion (issue 51): a call closed ``carried``
by a gate whose line is carried writes no line of its own; ``carried_line`` gives the line
another store call writes, when ``publish`` would write it, on both backends; a call closed
otherwise still writes it."""

from __future__ import annotations

from pathlib import Path

from orchestrator.adapter import Usage
from orchestrator.spend.gate import CallPlan, SpendGate
from orchestrator.spend.line import NAMESPACE, SpendLine
from orchestrator.state.carried_in_turn import carried_in_turn
from orchestrator.state.protocol import StateStore
from tests.spend.test_spend import backend, run_config, store

__all__ = ["backend", "store"]


def _nothing() -> None:
    return None


async def _call(gate: SpendGate, task: str, *, carried: bool) -> None:
    ticket = await gate.open(CallPlan(task=task, phase="build", adapter="claude"))
    await gate.close_then(
        ticket,
        usage=Usage(input_tokens=10),
        outcome="succeeded",
        then=_nothing,
        carried=carried,
    )


async def test_a_carried_close_leaves_the_line_to_the_call_that_carries_it(
    store: StateStore, tmp_path: Path
) -> None:
    gate = SpendGate(store, run_config(tmp_path), "s1")
    gate.line_carried = True
    await gate.load()
    await _call(gate, "t1", carried=True)
    assert await store.get_record(NAMESPACE, "s1") is None  # not written by the close
    carrier = gate.carried_line()
    assert carrier is not None and (carrier.put.namespace, carrier.put.key) == (NAMESPACE, "s1")
    assert not carrier.put.durable  # a record for reports
    assert gate.carried_line() is None  # just kept: not due again before the throttle's time
    (written,) = await carried_in_turn(store, [carrier.put])  # as a store call carries it
    assert written is not None
    line = SpendLine.model_validate(written.data)
    assert (line.calls, line.tokens) == (1, 10)
    stored = await store.get_record(NAMESPACE, "s1")
    assert stored is not None and SpendLine.model_validate(stored.data).calls == 1


async def test_a_close_not_carried_writes_the_line_itself(
    store: StateStore, tmp_path: Path
) -> None:
    carrying = SpendGate(store, run_config(tmp_path), "s1")
    carrying.line_carried = True
    await carrying.load()
    await _call(carrying, "t1", carried=False)  # a call whose phase does not complete
    found = await store.get_record(NAMESPACE, "s1")
    assert found is not None and SpendLine.model_validate(found.data).calls == 1
    alone = SpendGate(store, run_config(tmp_path), "s2")  # no phase completion carries it
    await alone.load()
    await _call(alone, "t2", carried=True)
    found = await store.get_record(NAMESPACE, "s2")
    assert found is not None and SpendLine.model_validate(found.data).calls == 1
