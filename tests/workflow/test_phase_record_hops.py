"""A phase's own records carried in the store calls beside them (issue 51): its start in its
ledger record's open (``put_made_record_and_task``: one worker-thread call, durable before
the CLI starts), its completion with its handoff's file and record (the handoff first: a
crash between them runs the phase again). No phase write takes a worker-thread call of its
own, and what they leave reads as before."""

from __future__ import annotations

from typing import Any

import pytest

from orchestrator.errors import StaleClaim
from orchestrator.models import PhaseStatus
from orchestrator.spend.gate import SpendGate
from orchestrator.spend.ledger import NAMESPACE as LEDGER
from orchestrator.spend.ledger import Ledger
from orchestrator.state import FileStateStore
from orchestrator.workflow.handoffs.document import NAMESPACE as HANDOFFS
from orchestrator.workflow.task_run import TaskRun, WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from tests.support.hops import count_hops
from tests.support.workflow_helpers import WRITE_FEATURE, Harness, harness, task

__all__ = ["harness"]


async def _metered_run(harness: Harness) -> TaskRun:
    config = harness.config(
        task({"build": WRITE_FEATURE}), workflow={"phases": [{"name": "build"}]}
    )
    run = await harness.start(config)
    run.spend = SpendGate(harness.store, config, "s1")
    return run


def _calls(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, str, int]]:
    """Every store write of the phase's records from now on: (method, what, worker-thread
    calls it took)."""
    seen: list[tuple[str, str, int]] = []
    hopped = count_hops(monkeypatch)
    update, made, both = (
        FileStateStore.update_task_state,
        FileStateStore.put_made_record,
        FileStateStore.put_made_record_and_task,
    )

    async def counted(method: str, what: str, call: Any) -> Any:
        before = len(hopped)
        try:
            return await call
        finally:
            seen.append((method, what, len(hopped) - before))

    async def updating(self: FileStateStore, task_id: str, updates: Any, *a: Any, **k: Any) -> Any:
        if "phases" not in updates:
            return await update(self, task_id, updates, *a, **k)
        return await counted("update_task_state", "phases", update(self, task_id, updates, *a, **k))

    async def making(self: FileStateStore, namespace: str, *a: Any, **k: Any) -> Any:
        if namespace not in (LEDGER, HANDOFFS):  # the CLI's run record: not the phase's
            return await made(self, namespace, *a, **k)
        return await counted("put_made_record", namespace, made(self, namespace, *a, **k))

    async def with_task(self: FileStateStore, namespace: str, *a: Any, **k: Any) -> Any:
        return await counted("put_made_record_and_task", namespace, both(self, namespace, *a, **k))

    monkeypatch.setattr(FileStateStore, "update_task_state", updating)
    monkeypatch.setattr(FileStateStore, "put_made_record", making)
    monkeypatch.setattr(FileStateStore, "put_made_record_and_task", with_task)
    return seen


async def test_a_phase_writes_its_records_in_the_calls_beside_them(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await _metered_run(harness)
    seen = _calls(monkeypatch)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    # The ledger's open carrying the phase's start, its close, the handoff carrying the
    # phase's end: one worker-thread call each, and no phase write of its own (five before).
    assert seen == [
        ("put_made_record_and_task", LEDGER, 1),
        ("put_made_record", LEDGER, 1),
        ("put_made_record_and_task", HANDOFFS, 1),
    ]
    record = (await harness.state()).phases["build"]
    assert record.status == PhaseStatus.COMPLETED and record.attempt == 1
    assert record.handoff_sha256 == (await harness.handoff("build")).digest
    assert (run.session.path / ".council" / "handoff" / "build.json").is_file()
    (call,) = await Ledger(harness.store).entries("s1")
    assert call.ended_at is not None
    started = [e for e in harness.events if getattr(e, "type", "") == "phase.started"]
    assert len(started) == 1


async def test_a_lost_claim_opens_no_call_and_starts_no_phase(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The claim taken over before the phase starts: the fence refuses its start, and the
    ledger record carried with it is not written either; no CLI runs."""
    run = await _metered_run(harness)
    state = await harness.state()
    assert state.claim is not None
    await harness.store.release_claim("t1", state.claim.token)
    assert await harness.store.acquire_claim("t1", "someone-else", 300) is not None

    with pytest.raises(StaleClaim):
        await run_workflow(run)
    assert "build" not in (await harness.state()).phases
    assert await Ledger(harness.store).entries("s1") == []
    assert harness.prompts("build") == []
