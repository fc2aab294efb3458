"""A session's report as the store has it now: its tasks and, in a team, the workstations
whose presence records are fresh (``scheduler.presence``)."""

from __future__ import annotations

from datetime import datetime

from pydantic import ValidationError

from orchestrator.models import KeyedRecord, SessionRecord
from orchestrator.run.build_report import build_report
from orchestrator.run.report import RunReport, WorkstationReport
from orchestrator.scheduler.presence import alive_workstations
from orchestrator.state.protocol import StateStore

__all__ = ["session_report"]

_STALE = 300.0  # seconds a presence record counts without the run's own setting


async def session_report(
    store: StateStore, session: SessionRecord, stale: float | None = None
) -> RunReport:
    """The report of ``session`` (``stale``: the run's ``scheduler.stale_threshold``)."""
    tasks = await store.list_tasks(session.session_id)
    present = await alive_workstations(store, session.session_id, stale or _STALE)
    workstations = [w for w in map(_workstation, present) if w is not None]
    return build_report(session, tasks, workstations)


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
