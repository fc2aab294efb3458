"""A session's report as the store has it now: its tasks and, in a team, the workstations
whose presence records are fresh (``scheduler.team.presence``); ``timed_session_report`` also says
until when that report holds while nothing is written (``report_cache`` keeps it that long)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from orchestrator.models import Checkpoint, KeyedRecord, SessionRecord, TaskState, utcnow
from orchestrator.run.reports.build_report import build_report
from orchestrator.run.reports.report import RunReport, WorkstationReport
from orchestrator.scheduler.rules.queue import wait_ends
from orchestrator.scheduler.team.presence import alive_workstations
from orchestrator.services.records import NAMESPACE as SERVICES
from orchestrator.services.records import by_task
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.spend.line import SpendLine

if TYPE_CHECKING:
    # A type only: `status`'s quick look (``run.reports.quick_report``) builds reports without
    # a store.
    from orchestrator.radar.records import Collision
    from orchestrator.state.protocol import StateStore

__all__ = ["STALE", "report_of", "session_report", "stopped_report", "timed_session_report"]

STALE = 300.0  # seconds a presence record counts without the run's own setting


async def session_report(
    store: StateStore,
    session: SessionRecord,
    stale: float | None = None,
    held: Mapping[str, TaskState] | None = None,
) -> RunReport:
    """The report of ``session`` (``stale``: the run's ``scheduler.stale_threshold``).
    ``held``: task records read before (the run's own at its end): only those written since
    are read again (``StateStore.list_tasks_changed``, as exact as reading them all)."""
    if held is None:
        report, _ = await timed_session_report(store, session, stale)
        return report
    changes = await store.list_tasks_changed(session.session_id, held)
    tasks = list(changes.states(held).values())
    report, _ = await _report_with(store, session, tasks, utcnow(), stale)
    return report


async def timed_session_report(
    store: StateStore, session: SessionRecord, stale: float | None = None
) -> tuple[RunReport, datetime | None]:
    """``session_report``, and the moment it starts to read otherwise with nothing written:
    the first end of a timed wait it reports (a park, a retry's back-off); now when it names
    a workstation (a presence ages by itself); None when nothing in it ends by itself."""
    now = utcnow()
    tasks = await store.list_tasks(session.session_id)
    return await _report_with(store, session, tasks, now, stale)


async def stopped_report(
    store: StateStore, checkpoint: Checkpoint, stale: float | None = None
) -> RunReport:
    """``session_report`` of the session and tasks ``checkpoint`` holds: a stop's report, of
    the records its checkpoint has just read (``scheduler.session.finish``), not read again
    (10,000 records for a run of 10,000 tasks); the rest (workstations, spend line,
    collisions, services) read as ``session_report`` reads them."""
    session = checkpoint.session
    tasks = [task for task in checkpoint.tasks if task.session_id == session.session_id]
    report, _ = await _report_with(store, session, tasks, utcnow(), stale)
    return report


async def _report_with(
    store: StateStore,
    session: SessionRecord,
    tasks: list[TaskState],
    now: datetime,
    stale: float | None,
) -> tuple[RunReport, datetime | None]:
    present = await alive_workstations(store, session.session_id, stale or STALE)
    from orchestrator.radar.records import collisions  # the radar's models: a store's look

    line = await store.get_record(SPEND_LINES, session.session_id)
    found = await collisions(store)
    services = await store.list_records(SERVICES)
    return report_of(session, tasks, present, line, now, found, services)


def report_of(
    session: SessionRecord,
    tasks: list[TaskState],
    present: list[KeyedRecord],
    line: KeyedRecord | None,
    now: datetime,
    found: list[Collision] | None = None,
    services: list[KeyedRecord] | None = None,
) -> tuple[RunReport, datetime | None]:
    """``timed_session_report`` of records already read: the session's tasks, the presence
    records of its live workstations, its spend line, the collision radar's live
    collisions and the ``services`` records (``services.records``: those of the session's
    tasks count) (``run.reports.quick_report`` reads them without the store). A report showing a
    collision holds only now: the collision's end writes no task record."""
    workstations = [w for w in map(_workstation, present) if w is not None]
    ends = [end for task in tasks if (end := wait_ends(task, now)) is not None]
    if workstations:
        ends.append(now)
    spend = _spend(line.data) if line is not None else None
    shown = by_task(services or (), session.session_id, session.task_ids)
    report = build_report(session, tasks, workstations, spend, found or (), shown)
    if report.collisions:
        ends.append(now)
    return report, min(ends, default=None)


def _spend(data: dict[str, Any]) -> SpendLine | None:
    try:
        return SpendLine.model_validate(data)
    except ValidationError:
        return None  # a record some other version wrote


def _workstation(record: KeyedRecord) -> WorkstationReport | None:
    data = record.data
    since = data.get("since")
    try:
        return WorkstationReport(
            workstation=record.key,
            host=str(data.get("host", "")),
            pid=int(data.get("pid", 0)),
            since=datetime.fromisoformat(since) if isinstance(since, str) else None,
            last_seen=record.updated_at,
            running=int(data.get("running", 0)),
        )
    except (TypeError, ValueError, ValidationError):
        return None  # a record some other version wrote: not worth failing a report over
