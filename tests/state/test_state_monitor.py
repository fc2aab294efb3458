"""The state monitor sweeps lapsed claims, recovers damaged records, and checkpoints."""

from __future__ import annotations

from pathlib import Path

import anyio

from orchestrator.models import ClaimStatus
from orchestrator.state import FileStateStore
from orchestrator.state.monitor import StateMonitor
from tests.support.timing import patience


async def test_one_round_does_every_duty(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        await store.create_session({}, ["a", "b"], session_id="s1")
        claim = await store.acquire_claim("a", "dead-worker", 0.01)
        assert claim is not None
        await store.update_task_state("b", {"priority": 1})
        current = tmp_path / "tasks" / "b" / "current.json"
        current.write_bytes(current.read_bytes()[:-5])
        await anyio.sleep(0.05)

        stats = await StateMonitor(store).run_once()

        assert (stats.claims_expired, stats.records_recovered, stats.checkpoints) == (1, 1, 1)
        assert stats.failures == []
        a = await store.get_task_state("a")
        assert a is not None and a.claim is not None and a.claim.status == ClaimStatus.EXPIRED
        assert len(await store.list_checkpoints("s1")) == 1


async def test_run_repeats_duties_and_survives_failures(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        await store.create_session({}, ["a"], session_id="s1")
        calls = 0

        class BrokenVerify(StateMonitor):
            async def verify(self) -> None:
                nonlocal calls
                calls += 1
                raise RuntimeError("disk on fire")

        monitor = BrokenVerify(
            store, lock_cleanup_interval=0.02, verify_interval=0.02, checkpoint_interval=0.05
        )
        # Until it has repeated each duty (counted, not timed: a loaded machine takes longer).
        async with anyio.create_task_group() as group:
            group.start_soon(monitor.run)
            with anyio.fail_after(patience(30)):
                while calls < 3 or monitor.stats.checkpoints < 2:
                    await anyio.sleep(0.01)
            group.cancel_scope.cancel()
        assert calls >= 3 and len(monitor.stats.failures) == calls
        assert monitor.stats.checkpoints >= 2


async def test_in_a_run_lapsed_claims_are_left_to_the_scheduler(tmp_path: Path) -> None:
    """A run's monitor checkpoints only its session and never sweeps claims: the scheduler's
    own sweep must see them lapse, to put their tasks back in the queue."""
    async with FileStateStore(tmp_path) as store:
        await store.create_session({}, ["a"], session_id="mine")
        await store.create_session({}, ["b"], session_id="other")
        assert await store.acquire_claim("a", "dead-worker", 0.01) is not None
        await anyio.sleep(0.05)

        monitor = StateMonitor(store, session_id="mine", sweep_claims=False)
        stats = await monitor.run_once()

        assert (stats.claims_expired, stats.checkpoints) == (0, 1)
        assert [c.session_id for c in await store.list_checkpoints()] == ["mine"]
        assert len(await store.sweep_expired_claims()) == 1  # still there for the scheduler
