"""A session's report kept beside the file store, so ``council status`` of a big run reads one
file instead of parsing every record, and starts without the store at all.

Building a report parses each task's record, about 100 µs a task (a tenth of a second for a
run of 1,024), and needs the store, its event loop and its modules (some 60 ms more), every
time ``status`` runs. Most of the time nothing was written since the last look (a finished run
is read again and again), so the report is kept in ``<state dir>/report-cache.json`` with what
it was built from:

- the identity of every session's record file, of every ``services`` record's (each
  session's services, ``services.records``: written without its task's record) and of the
  reported session's tasks' (``state.file.record_files.layout``: a record is only ever
  written by replacing its file, so a write by any process changes it). Equal identities mean
  the records are the ones the report was built from, the newest session included;
- the moment the report starts to read otherwise with nothing written (a park or a retry's
  back-off ending, a workstation's presence ageing: ``timed_session_report``);
- the identity of the source files of the code that builds a report (``_makers``): a report
  kept by another version of council (an upgrade, an edit) is built again.

``snapshot`` takes the identities *before* the records are read: a write in between leaves a
kept report newer than its identities say, so the next look finds them changed and builds the
report again. Stale is never taken for fresh; a doubtful cache is only ever a rebuild.

``kept_report`` is the quick look (blocking, no store, no event loop); ``keep`` writes the file
by replacing it. A file that cannot be read, parsed or written is no error, only a rebuild. It
is a JSON document of the report's own schema, read back with validation: nothing in it runs.

``keep`` may keep beside the report what ``status`` printed of it (its ``view``: the
surface's, ``cli.status.kept_view``, which also checks it when it is read back), and
``kept_view`` gives it back on the same terms as the report, without reading the report back:
this module imports neither pydantic nor the report's models until ``kept_report`` reads one.
"""

from __future__ import annotations

import contextlib
import json
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from orchestrator.state.file.record_files.layout import (
    RECORDS,
    Identity,
    identities_of,
    session_identities,
    task_identities,
)

if TYPE_CHECKING:
    from orchestrator.config.origin import ConfigOrigin
    from orchestrator.run.reports.report import RunReport

__all__ = [
    "CACHE_NAME",
    "SERVICES",
    "Snapshot",
    "keep",
    "kept_report",
    "kept_view",
    "snapshot_sessions",
    "snapshot_tasks",
]

CACHE_NAME = "report-cache.json"
_FORMAT = 4
# ``services.records.NAMESPACE``, named here: that module imports pydantic, which the quick
# look does without (``tests/run/reports/test_kept_view.py`` holds them equal).
SERVICES = "services"


@dataclass
class Snapshot:
    """What a report is built from, as identities: every session's record and every services
    record, then the reported session's tasks'."""

    sessions: dict[str, Identity | None]
    session_id: str = ""
    tasks: dict[str, Identity | None] | None = None
    services: dict[str, Identity | None] | None = None

    def as_json(self) -> dict[str, Any]:
        return {
            "sessions": _listed(self.sessions),
            "services": _listed(self.services or {}),
            "session": self.session_id,
            "tasks": _listed(self.tasks or {}),
        }


def snapshot_sessions(root: Path) -> Snapshot:
    """Blocking: the identities of every session record and every services record, before
    any is read."""
    return Snapshot(session_identities(root), services=_services(root))


def _services(root: Path) -> dict[str, Identity | None]:
    return identities_of(root, os.path.join(RECORDS, SERVICES))


def snapshot_tasks(root: Path, snapshot: Snapshot, session_id: str, task_ids: list[str]) -> None:
    """Blocking: the identities of ``session_id``'s task records, before any is read."""
    snapshot.session_id, snapshot.tasks = session_id, task_identities(root, task_ids)


def kept_report(root: Path, origin: ConfigOrigin | None = None) -> RunReport | None:
    """The kept report of the newest session in the file store at ``root`` (of those started
    from ``origin``'s config file, ``config.origin.of_config``), if every record it was built
    from is unchanged and it has not run out; else None (build it, then ``keep``)."""
    kept = _kept(root, origin)
    if kept is None:
        return None
    from pydantic import ValidationError

    from orchestrator.run.reports.report import RunReport

    try:
        return RunReport.model_validate(kept.get("report"))
    except ValidationError:
        return None


def kept_view(root: Path, origin: ConfigOrigin | None = None) -> object | None:
    """What was kept beside the report ``kept_report`` would give (``keep``'s ``view``), on the
    same terms, the report itself not read back; None when there is none or it does not hold.
    As found in the file: its reader checks it."""
    kept = _kept(root, origin)
    return None if kept is None else kept.get("view")


def _kept(root: Path, origin: ConfigOrigin | None) -> dict[str, Any] | None:
    """The kept file's document, while it holds for ``origin``'s runs."""
    try:
        kept = json.loads((root / CACHE_NAME).read_bytes())
    except (OSError, ValueError):
        return None
    if not isinstance(kept, dict) or not _fresh(root, kept):
        return None
    if origin is None:  # the store's newest: kept for it, or for a config whose it was
        return kept if kept.get("store_newest") is True else None
    if kept.get("config") != origin.path:
        return None  # kept for another config's runs, or for the store's newest
    return kept


def keep(
    root: Path,
    snapshot: Snapshot,
    ends: datetime | None,
    report: RunReport,
    origin: ConfigOrigin | None = None,
    view: Mapping[str, object] | None = None,
    *,
    store_newest: bool = False,
) -> None:
    """Blocking: keep ``report``, built from the records ``snapshot`` names, until ``ends``;
    the newest session of ``origin``'s config file (None: of the store); and ``view``, what
    ``status`` prints of it, as plain JSON values (``kept_view``). ``store_newest``: that
    session is the store's newest too, so the report also answers a look with no config (the
    session records it was read with unchanged, it still is)."""
    services = snapshot.services or {}
    known = [*snapshot.sessions.values(), *services.values(), *(snapshot.tasks or {}).values()]
    if snapshot.tasks is None or any(identity is None for identity in known):
        return  # a record with no file yet: nothing to tell its first write by
    with contextlib.suppress(OSError):
        kept = {
            "format": _FORMAT,
            "makers": _makers(),
            "ends": ends.isoformat() if ends is not None else None,
            "config": origin.path if origin is not None else None,
            "store_newest": origin is None or store_newest,
            **snapshot.as_json(),
            "view": view,
        }
        # The report as pydantic writes it (its own encoder, not json's, some ten times
        # quicker for a big run), spliced in as the last member of the object.
        head = json.dumps(kept, separators=(",", ":"))
        text = f'{head[:-1]},"report":{report.model_dump_json()}}}'
        fd, temp = tempfile.mkstemp(prefix=".report-cache.", dir=root)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                handle.write(text)
            os.replace(temp, root / CACHE_NAME)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temp)
            raise


def _fresh(root: Path, kept: dict[str, Any]) -> bool:
    try:
        if (kept.get("format"), kept.get("makers")) != (_FORMAT, _makers()):
            return False
        ends = kept.get("ends")
        if ends is not None and not (isinstance(ends, str) and utcnow() < _moment(ends)):
            return False
    except (OSError, ValueError, TypeError):  # TypeError: a moment without its zone
        return False
    tasks = kept.get("tasks")
    if not isinstance(tasks, dict) or not all(isinstance(key, str) for key in tasks):
        return False
    if kept.get("sessions") != _listed(session_identities(root)):
        return False  # a session written, added or gone: maybe no longer the newest
    if kept.get("services") != _listed(_services(root)):
        return False  # a session's services changed (their records are not the tasks')
    return bool(tasks == _listed(task_identities(root, list(tasks))))


def utcnow() -> datetime:
    """Now, in UTC: ``models.utcnow``, without the models (they import pydantic)."""
    return datetime.now(UTC)


def _moment(text: str) -> datetime:
    return datetime.fromisoformat(text)


def _listed(identities: dict[str, Identity | None]) -> dict[str, list[int] | None]:
    """As JSON reads it back."""
    return {key: list(identity) if identity else None for key, identity in identities.items()}


_MAKERS = (
    "run/reports/report.py",
    "run/reports/build_report.py",
    "run/reports/session_report.py",
    "scheduler/rules/queue.py",
    "radar/namespaces.py",
    "radar/records.py",
    "radar/warning.py",
    "services/records.py",
    "spend/line.py",
    "cli/status/summary.py",
    "cli/status/kept_view.py",
)
"""The source files, under the package, of the code that builds a report and what ``status``
prints of it (named, not imported: the quick look imports none of them)."""


def _makers() -> list[list[int]]:
    """The identity of each of ``_MAKERS``: any other version of council (upgraded, edited)
    has other files."""
    package = Path(__file__).resolve().parents[2]
    found = []
    for name in _MAKERS:
        st = os.stat(package / name)
        found.append([st.st_ino, st.st_size, st.st_mtime_ns])
    return found
