"""A stop's end waits for the store's answers, not for one clock (``session.finish``,
``Patience``): slow answers still leave the session ``interrupted``, its checkpoint and
``run.interrupted``, written in that order; a store that does not answer, or says it cannot be
reached, ends the stop at once with nothing more asked of it; a kill cuts the end."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import anyio
import pytest

from orchestrator.council import Council
from orchestrator.errors import StoreUnavailable
from orchestrator.events import Event
from orchestrator.models import (
    CheckpointInfo,
    SessionRecord,
    SessionStatus,
    TaskState,
    TaskStatus,
)
from orchestrator.run import stores as stores_module
from orchestrator.run.reports.report import RunReport
from orchestrator.scheduler.cancel import CANCEL_REQUESTS
from orchestrator.scheduler.session import finish as finish_module
from orchestrator.state import FileStateStore
from orchestrator.state.postgres.connection import connection_kwargs
from orchestrator.state.postgres.outages import DEADLINE
from orchestrator.workflow.task_run import TaskRun, WorkflowResult, WorkflowStatus
from tests.support.scheduler_helpers import Probe, new_repo, run_config, wait_or_cancel
from tests.support.timing import patience

# Seconds each slow step of the end takes: three of them together are past the one clock of
# 5 s that the whole end had (it then lost the checkpoint and the event, at load 20).
SLOW = 2.5


class _EndStore(FileStateStore):
    """The file store, with the three steps of a stop's end noted in ``asked`` and answered as
    ``how`` says: ``slow`` (after ``SLOW`` seconds), ``silent`` (never), ``away``
    (``StoreUnavailable``), ``cut`` (the checkpoint never answers: a kill cuts it)."""

    asked: ClassVar[list[str]] = []
    how: ClassVar[str] = "slow"

    async def update_session(
        self, session_id: str, updates: Mapping[str, Any], *args: Any, **kwargs: Any
    ) -> SessionRecord:
        if updates.get("status") == SessionStatus.INTERRUPTED:
            await self._step("interrupted")
        return await super().update_session(session_id, updates, *args, **kwargs)

    async def create_checkpoint(
        self,
        session_id: str,
        reason: str,
        *,
        known: Mapping[str, TaskState] | None = None,
        session: SessionRecord | None = None,
    ) -> CheckpointInfo:
        await self._step("checkpoint")
        return await super().create_checkpoint(session_id, reason, known=known, session=session)

    async def emit(self, event: Event) -> None:
        if event.type == "run.interrupted":
            await self._step("run.interrupted")
        await super().emit(event)

    async def _step(self, name: str) -> None:
        self.asked.append(name)
        if self.how == "slow":
            await anyio.sleep(SLOW)
        elif self.how == "silent" or (self.how == "cut" and name == "checkpoint"):
            await anyio.sleep_forever()
        elif self.how == "away":
            raise StoreUnavailable("the test took the store away")


async def _hangs(run: TaskRun, call: int) -> WorkflowResult:
    await wait_or_cancel(run, 60)
    return WorkflowResult(WorkflowStatus.CANCELLED, phase="build")


async def _stopped_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str, *, kill: bool = False
) -> tuple[RunReport, list[str], list[CheckpointInfo], SessionRecord | None]:
    """A run of one task stopped while it runs, its store's end answered as ``how`` says
    (killed once the checkpoint is asked, with ``kill``): the report, what the end asked, the
    session's checkpoints, its record."""
    monkeypatch.setattr(stores_module, "FileStateStore", _EndStore)
    monkeypatch.setattr(_EndStore, "asked", [])
    monkeypatch.setattr(_EndStore, "how", how)
    repo = new_repo(tmp_path)
    probe = Probe(behave={"t": _hangs})
    heard: list[str] = []
    reports: list[RunReport] = []
    config = run_config(repo, [{"id": "t", "prompt": "p"}])
    async with Council(config, workflow=probe) as council:
        council.subscribe(lambda event: heard.append(event.type))

        async def go() -> None:
            reports.append(await council.run())

        with anyio.fail_after(patience(60)):
            async with anyio.create_task_group() as group:
                group.start_soon(go)
                while "t" not in probe.running_tasks():
                    await anyio.sleep(0.02)
                council.stop()
                if kill:
                    while "checkpoint" not in _EndStore.asked:
                        await anyio.sleep(0.02)
                    council.kill()
        store = council.scheduler.services.store
        session_id = reports[0].session_id
        checkpoints = await store.list_checkpoints(session_id)
        session = await store.get_session(session_id)
    asked = [*_EndStore.asked, *(["heard run.interrupted"] if "run.interrupted" in heard else [])]
    return reports[0], asked, checkpoints, session


async def test_slow_answers_still_leave_the_checkpoint_and_the_event_in_order(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    report, asked, checkpoints, session = await _stopped_run(tmp_path, monkeypatch, "slow")

    assert asked == ["interrupted", "checkpoint", "run.interrupted", "heard run.interrupted"]
    assert [c.reason for c in checkpoints] == ["interrupted"]
    assert session is not None and session.status == SessionStatus.INTERRUPTED
    assert report.status == SessionStatus.INTERRUPTED
    assert report.task("t").status == TaskStatus.QUEUED  # from the checkpoint, back in the queue


@pytest.mark.parametrize("how", ["silent", "away"])
async def test_a_store_that_does_not_answer_ends_the_stop_with_nothing_more_asked(
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
    how: str,
) -> None:
    # A heard store's bound, shortened so that the silent store's test does not wait 30 s.
    monkeypatch.setattr(finish_module, "HEARD", 0.5)
    with caplog.at_level(logging.WARNING):
        report, asked, checkpoints, session = await _stopped_run(tmp_path, monkeypatch, how)

    assert asked == ["interrupted"]  # no checkpoint and no event asked of a store gone
    assert checkpoints == []
    assert session is not None and session.status == SessionStatus.ACTIVE  # resumable as is
    assert report.exit_code != 0
    assert "the end of the run could not be recorded" in caplog.text


async def test_a_kill_cuts_the_end_where_it_stands(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Without the cut the checkpoint's step would wait its whole bound: past the test's guard.
    monkeypatch.setattr(finish_module, "HEARD", 600.0)
    _, asked, checkpoints, session = await _stopped_run(tmp_path, monkeypatch, "cut", kill=True)

    assert asked == ["interrupted", "checkpoint"]
    assert checkpoints == []
    assert session is not None and session.status == SessionStatus.INTERRUPTED


def test_the_bounds_are_the_stores_own() -> None:
    """An unheard store gets the PostgreSQL store's retry deadline, within which it answers
    ``StoreUnavailable`` when it is away; a heard one more than the connection's own limits
    (keepalives: 10 s idle, then 3 probes 5 s apart) give a server gone silent."""
    limits = connection_kwargs()
    silent = int(limits["keepalives_idle"]) + int(limits["keepalives_interval"]) * int(
        limits["keepalives_count"]
    )
    assert finish_module.UNHEARD == DEADLINE
    assert max(silent, int(limits["connect_timeout"])) < finish_module.HEARD
    assert finish_module.Patience(heard=False).bound == finish_module.UNHEARD
    assert finish_module.Patience(heard=True).bound == finish_module.HEARD


class _AwayAtTheStop(FileStateStore):
    """The file store, taken away as the run is stopped (``away``): every tick's read of the
    cancel requests and the end's first write say ``StoreUnavailable``; back once the end gave
    up (so the run's report can be read)."""

    away: ClassVar[list[bool]] = []
    asked: ClassVar[list[str]] = []

    async def list_records(self, namespace: str, *args: Any, **kwargs: Any) -> Any:
        if self.away and namespace == CANCEL_REQUESTS:  # read by every tick (``reconcile``)
            self.asked.append("read")
            raise StoreUnavailable("the test took the store away")
        return await super().list_records(namespace, *args, **kwargs)

    async def update_session(
        self, session_id: str, updates: Mapping[str, Any], *args: Any, **kwargs: Any
    ) -> SessionRecord:
        if self.away and updates.get("status") == SessionStatus.INTERRUPTED:
            self.asked.append("interrupted")
            self.away.clear()
            raise StoreUnavailable("the test took the store away")
        return await super().update_session(session_id, updates, *args, **kwargs)


async def test_a_stop_whose_tick_finds_the_store_away_ends_without_waiting_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    """Before, the stopped run ticked until the store came back: each tick's read failed and
    the loop tried again, with nothing in flight left to end."""
    monkeypatch.setattr(stores_module, "FileStateStore", _AwayAtTheStop)
    monkeypatch.setattr(_AwayAtTheStop, "away", [])
    monkeypatch.setattr(_AwayAtTheStop, "asked", [])
    repo = new_repo(tmp_path)
    probe = Probe(behave={"t": _hangs})
    config = run_config(repo, [{"id": "t", "prompt": "p"}])
    with caplog.at_level(logging.WARNING):
        async with Council(config, workflow=probe) as council:
            with anyio.fail_after(patience(60)):
                async with anyio.create_task_group() as group:
                    group.start_soon(council.run)
                    while "t" not in probe.running_tasks():
                        await anyio.sleep(0.02)
                    council.stop()
                    _AwayAtTheStop.away.append(True)
            checkpoints = await council.scheduler.services.store.list_checkpoints()

    assert _AwayAtTheStop.asked[0] == "read" and _AwayAtTheStop.asked[-1] == "interrupted"
    assert checkpoints == []
    assert "the end of the run could not be recorded" in caplog.text
