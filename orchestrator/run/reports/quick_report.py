"""The newest session's report of a file store, built in this thread from its records as the
store's synchronous read path gives them (``state.file.record_files.peek_read``), without the
store, its event loop or its worker threads: ``council status``'s first look after a write
(``report_cache`` keeps what this builds, for the looks after it).

It reads what the report shows and nothing else: every session record (to find the newest),
the newest session's tasks, the presence records of its workstations, its spend line, the
collision radar's records and the sessions' services records (``services.records``). The
identities of the session records are taken before they are read
(``report_cache.snapshot_sessions``), and each task record's from the descriptor it is read
through (``PeekRead.tasks``' ``seen``), so a write meanwhile leaves the kept report stale by its
own identities and the next look builds it again.

Anything the store would have to act on first (an intent on disk, a record that does not
decode: ``peek_read`` says what) makes the read path give way; then ``quick_report`` answers
None and the caller opens the store, which reads, recovers and reports as it always did.
Nothing here writes a record.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

from orchestrator.models import SessionRecord, utcnow
from orchestrator.radar.namespaces import COLLISIONS
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.report_cache import keep, snapshot_sessions
from orchestrator.run.reports.session_report import STALE, report_of
from orchestrator.scheduler.team.presence import NAMESPACE as PRESENCE
from orchestrator.scheduler.team.presence import alive_among
from orchestrator.services.records import NAMESPACE as SERVICES
from orchestrator.spend.line import NAMESPACE as SPEND_LINES
from orchestrator.state.expiry import is_expired
from orchestrator.state.file.record_files.layout import Identity
from orchestrator.state.file.record_files.peek_read import PeekRead

if TYPE_CHECKING:
    from orchestrator.config.origin import ConfigOrigin
    from orchestrator.models import KeyedRecord
    from orchestrator.radar.records import Collision

__all__ = ["quick_report"]


def quick_report(
    root: Path,
    origin: ConfigOrigin | None = None,
    viewer: Callable[[RunReport], Mapping[str, object] | None] | None = None,
) -> RunReport | None:
    """Blocking: the newest session's report of the file store at ``root``, kept for the next
    look (``report_cache.keep``, with what ``viewer`` makes of it: its ``view``); None when
    the store itself must be asked (module doc), or when no session is recorded there (the
    store's path says so in its own words)."""
    read = PeekRead.open(root)
    if read is None:
        return None
    shot = snapshot_sessions(root)
    sessions = read.sessions(list(shot.sessions))
    if sessions is None:
        return None
    newest_of_store = max(sessions, key=_age, default=None)
    if origin is not None:  # a config's runs only (the config package: only then)
        from orchestrator.config.origin import of_config

        sessions = of_config(sessions, origin)
    if not sessions:
        return None
    newest = max(sessions, key=_age)
    task_ids = list(newest.task_ids)
    seen: dict[str, Identity | None] = {}
    if (tasks := read.tasks(task_ids, seen)) is None:
        return None
    # The identity of each task's file as read, from its descriptor: a write after the read
    # leaves the path another file, so the next look builds the report again.
    shot.session_id, shot.tasks = newest.session_id, {key: seen.get(key) for key in task_ids}
    tasks = [task for task in tasks if task.session_id == newest.session_id]
    now = utcnow()
    if (presence := read.records(PRESENCE)) is None:
        return None
    if (lines := read.records(SPEND_LINES, [newest.session_id])) is None:
        return None
    if (radar := read.records(COLLISIONS)) is None:
        return None
    if (services := read.records(SERVICES)) is None:
        return None
    present = [record for record in presence if not is_expired(record, now)]
    line = next((record for record in lines if not is_expired(record, now)), None)
    alive = alive_among(present, newest.session_id, STALE, now)
    found = _collisions(radar, now)
    report, ends = report_of(newest, tasks, alive, line, now, found, services)
    view = viewer(report) if viewer is not None else None
    keep(root, shot, ends, report, origin, view, store_newest=newest is newest_of_store)
    return report


def _collisions(records: list[KeyedRecord], now: datetime) -> list[Collision]:
    """The live collisions of the radar's ``records``: its models imported only when there is
    one (most runs have none)."""
    live = [record for record in records if not is_expired(record, now)]
    if not live:
        return []
    from orchestrator.radar.records import read_collision

    return [collision for record in live if (collision := read_collision(record.data))]


def _age(session: SessionRecord) -> tuple[datetime, str]:
    return session.created_at, session.session_id
