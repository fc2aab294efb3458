"""A workstation's presence record expires once it stops refreshing it: a workstation that
died without leaving is not shown as present, and upkeep removes its record."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from orchestrator.models import utcnow
from orchestrator.scheduler.team.presence import NAMESPACE, Presence, alive_workstations
from orchestrator.state import FileStateStore
from orchestrator.state.team import Team

TEAM = Team(run_key="run", remote="origin", workstation="ws-1")


async def test_a_presence_record_expires_after_the_stale_threshold(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        before = utcnow()
        await Presence(store, TEAM, every=0, stale=30).beat("s1", running=1, force=True)
        record = await store.get_record(NAMESPACE, TEAM.workstation)
        assert record is not None and record.expires_at is not None
        # The stale threshold and the clock skew allowed on top of it.
        assert (
            before + timedelta(seconds=35) <= record.expires_at <= utcnow() + timedelta(seconds=35)
        )
        assert [r.key for r in await alive_workstations(store, "s1", 30)] == [TEAM.workstation]

        assert await store.purge_expired(now=utcnow() + timedelta(seconds=20)) == 0
        assert await store.purge_expired(now=utcnow() + timedelta(seconds=40)) == 1
        assert await store.get_record(NAMESPACE, TEAM.workstation) is None


async def test_without_a_stale_threshold_the_record_lasts(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path) as store:
        await Presence(store, TEAM, every=0).beat("s1", running=0, force=True)
        record = await store.get_record(NAMESPACE, TEAM.workstation)
        assert record is not None and record.expires_at is None
        assert await store.purge_expired(now=utcnow() + timedelta(days=365)) == 0
