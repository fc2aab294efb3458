"""Each session's services in the run's report (issue 50, "Visible"): the ``services`` record of
each task (``services.records``) read into its ``TaskReport`` on the file store and on
PostgreSQL, by ``status``'s quick look and its kept report too (a services record written
alone makes the kept report stale), one of another session never shown, a damaged one read as
none; and shown: the status table's ``services`` column, the live board's line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.cli.status.live_board import rows_for
from orchestrator.cli.status.summary import print_summary, services_text, summary_table
from orchestrator.cli.store_access import newest_report
from orchestrator.models import KeyedRecord, SessionStatus, TaskStatus
from orchestrator.run.reports import report_cache
from orchestrator.run.reports.quick_report import quick_report
from orchestrator.run.reports.report import RunReport, RunTotals, TaskReport
from orchestrator.run.reports.session_report import session_report
from orchestrator.scheduler.board import TaskLine
from orchestrator.services.records import (
    MAX_WHY,
    NAMESPACE,
    ServicesRecord,
    ServiceState,
    bounded_why,
    newer,
    note,
)
from orchestrator.state import FileStateStore, StateStore

pytestmark = pytest.mark.anyio

READY = {"name": "web", "state": "ready", "port": 3000, "why": None}
FAILED = {"name": "db", "state": "failed", "port": 5432, "why": "ended before it was ready"}


def _record(session: str, *services: dict[str, Any]) -> dict[str, Any]:
    return {"session": session, "worktree": "wt-1", "services": list(services)}


async def _recorded(store: StateStore) -> str:
    """A session of tasks a, b, c: a's session has web ready and db failed; b's record is of
    another session; c's is damaged."""
    session = await store.create_session({}, ["a", "b", "c"])
    sid = session.session_id
    await store.update_task_state("a", {"status": TaskStatus.RUNNING})
    await store.put_record(NAMESPACE, "a", _record(sid, READY, FAILED))
    await store.put_record(NAMESPACE, "b", _record("s-older", READY))
    await store.put_record(NAMESPACE, "c", {"session": sid, "services": [{"name": "x"}]})
    return sid


def _shown(report: RunReport) -> dict[str, list[dict[str, Any]]]:
    return {t.task_id: [s.model_dump(mode="json") for s in t.services] for t in report.tasks}


async def _reported(store: StateStore) -> None:
    sid = await _recorded(store)
    session = await store.get_session(sid)
    assert session is not None
    report = await session_report(store, session)
    assert _shown(report) == {"a": [READY, FAILED], "b": [], "c": []}


async def test_a_task_s_services_are_in_its_report_on_the_file_store(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        await _reported(store)


async def test_a_task_s_services_are_in_its_report_on_postgres(pg_dsn: str) -> None:
    from orchestrator.state.postgres.store import PostgresStateStore

    async with await PostgresStateStore.connect(pg_dsn) as store:
        await _reported(store)


async def test_the_quick_look_and_the_kept_report_follow_a_services_record(
    tmp_path: Path,
) -> None:
    root = tmp_path / "state"
    async with FileStateStore(root) as store:
        sid = await _recorded(store)
    quick = quick_report(root)
    assert quick is not None and _shown(quick)["a"] == [READY, FAILED]
    (root / report_cache.CACHE_NAME).unlink()
    built, _ = await newest_report(root)
    assert built == quick  # the store's report and the quick one are the same
    assert report_cache.kept_report(root) == built

    # The services record is written alone (no task record with it): the kept report is
    # stale by its identities, and the next look shows the change.
    async with FileStateStore(root) as store:
        await store.put_record(NAMESPACE, "a", _record(sid, {**READY, "state": "stopped"}))
    assert report_cache.kept_report(root) is None
    again = quick_report(root)
    assert again is not None
    assert _shown(again)["a"] == [{**READY, "state": "stopped"}]
    assert report_cache.kept_report(root) == again


def _report(*tasks: TaskReport) -> RunReport:
    totals = RunTotals(tasks=len(tasks), done=0, failed=0, conflict=0, cancelled=0, pending=1)
    return RunReport(
        session_id="s-1", status=SessionStatus.ACTIVE, tasks=list(tasks), totals=totals
    )


def test_the_status_table_has_a_services_column_when_a_task_has_services(
    capsys: pytest.CaptureFixture[str],
) -> None:
    services = [ServiceState.model_validate(READY), ServiceState.model_validate(FAILED)]
    with_services = TaskReport(task_id="a", status=TaskStatus.RUNNING, phases={}, services=services)
    without = TaskReport(task_id="b", status=TaskStatus.QUEUED, phases={})
    assert services_text(with_services) == "web ready, db failed"
    assert services_text(without) == "-"

    columns, rows, _ = summary_table(_report(with_services, without))
    assert columns[-1].header == "services"  # also the columns `status --watch` draws
    assert [row[-1] for row in rows] == ["web ready, db failed", "-"]
    print_summary(_report(with_services, without), wide=True)
    table = capsys.readouterr().out
    assert "services" in table and "web ready, db failed" in table, table

    print_summary(_report(without), wide=True)  # no task has services: no such column
    assert "services" not in capsys.readouterr().out


def test_the_live_board_line_of_a_running_task_says_its_services() -> None:
    line = TaskLine("a", "running", "build", "cli", 3.0, "editing", note="services: web ready")
    marked = TaskLine("b", "running", note="services: db starting", collision="collides with a")
    rows = rows_for([line, marked], height=40)
    assert rows[0][-1] == "editing · services: web ready"
    assert rows[1][-1] == "services: db starting · ! collides with a"


def test_a_note_and_a_reason_are_bounded() -> None:
    assert note({"web": "ready", "db": "starting"}) == "web ready, db starting"
    long = "x" * (MAX_WHY * 3)
    cut = bounded_why(long)
    assert len(cut) == MAX_WHY and cut.endswith("…")
    assert bounded_why("short") == "short"
    with pytest.raises(ValueError, match="why"):
        ServiceState.model_validate({**FAILED, "why": long})
    with pytest.raises(ValueError, match="state"):
        ServiceState.model_validate({**READY, "state": "exploded"})


def test_a_record_of_a_later_attempt_of_the_session_is_newer() -> None:
    """What the services part never writes over (another workstation took the task over)."""

    def kept(session: str, attempt: int) -> KeyedRecord:
        data = {**_record(session, READY), "attempt": attempt}
        return KeyedRecord(namespace=NAMESPACE, key="a", data=data)

    mine = ServicesRecord(session="s-1", attempt=2)
    assert newer(kept("s-1", 3), mine)
    assert not newer(kept("s-1", 2), mine)  # its own attempt: written over
    assert not newer(kept("s-0", 9), mine)  # an earlier run's
    assert not newer(None, mine)
    damaged = KeyedRecord(namespace=NAMESPACE, key="a", data={"session": "s-1", "attempt": -1})
    assert not newer(damaged, mine)
