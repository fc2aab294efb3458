"""The page's picture of the run: the newest report, rebuilt when the store is written.

``Board.follow`` hears every write to the store (``StateStore.watch``: the event log woken by
inotify on a file store, LISTEN/NOTIFY on a database, so another workstation's writes too),
rebuilds the report (at once after a quiet spell, at most every ``REBUILD_EVERY`` seconds while
writes keep coming; only the tasks written are read again) and bumps ``version``; idle, it waits
and costs nothing. The page hears the version through server-sent events and asks for what it
shows (``view``): the run's totals, workstations, collisions and spend in full, the tasks
filtered, searched and cut to one window on the server, so a run of 10,000 tasks sends the
browser a window's rows only.
"""

from __future__ import annotations

import logging
import time
from collections import Counter
from collections.abc import Collection
from typing import Any

import anyio

from orchestrator.errors import CouncilError
from orchestrator.run.reports.report import RunReport, TaskReport
from orchestrator.web.source import WebSource

__all__ = ["PAGE_ROWS", "REBUILD_EVERY", "Board", "task_row"]

REBUILD_EVERY = 0.2  # seconds at least between two rebuilds while writes keep coming
PAGE_ROWS = 200  # the most rows one view sends
_log = logging.getLogger(__name__)
_SHOWN = ("tasks", "sessions", "records")  # what a report is built from


class Board:
    """The newest report and its version, for every page the server serves."""

    def __init__(self, source: WebSource) -> None:
        self.source = source
        self.version = 0
        self._report: RunReport | None = None
        self._moved = anyio.Event()
        self._lock = anyio.Lock()

    async def report(self) -> RunReport:
        async with self._lock:
            if self._report is None:
                self._report = await self.source.report()
            return self._report

    async def rebuild(self, changed: Collection[str] | None = None) -> None:
        """Read the report again (``changed``: only these tasks were written; None: read
        every task) and tell every page waiting for a change."""
        async with self._lock:
            self._report = await self.source.report(changed)
            self.version += 1
            moved, self._moved = self._moved, anyio.Event()
        moved.set()

    async def follow(self) -> None:
        """Rebuild on every write to the store, until cancelled (module doc)."""
        built = 0.0  # when the last rebuild began
        missed = False  # a rebuild failed: which tasks were written is not known any more
        async with self.source.watch() as changes:
            # Every task read again once the watch is entered: a write between the first
            # report and the watch's start is heard by neither, and a kept task is read again
            # only when written.
            await self.rebuild()
            while True:
                batch = await changes.next_batch()
                if not any(c.resync or c.kind.startswith(_SHOWN) for c in batch):
                    continue
                # A burst of writes is one rebuild, at most every REBUILD_EVERY seconds; a
                # write after a quiet spell is shown at once.
                await anyio.sleep(max(0.0, built + REBUILD_EVERY - time.monotonic()))
                built = time.monotonic()
                tasks = {c.key for c in batch if c.kind == "tasks"}
                whole = missed or any(c.resync for c in batch)
                try:
                    await self.rebuild(None if whole else tasks)
                    missed = False
                except (CouncilError, OSError) as exc:  # the store away: the last report stays
                    _log.warning("council web: the run's report could not be read again: %s", exc)
                    missed = True  # the tasks written meanwhile: all read at the next rebuild

    async def moved_after(self, seen: int, patience: float) -> int:
        """The version once it is past ``seen``, or as it is after ``patience`` seconds."""
        with anyio.move_on_after(patience):
            while self.version <= seen:
                await self._moved.wait()
        return self.version

    async def view(
        self, status: str = "", query: str = "", offset: int = 0, limit: int = PAGE_ROWS
    ) -> dict[str, Any]:
        """What the page shows (module doc); the tasks of ``status`` whose id, adapter, phase
        or reason holds ``query``, from ``offset``, at most ``limit`` of them."""
        report = await self.report()
        wanted = [t for t in report.tasks if _matches(t, status, query.strip().lower())]
        offset = max(0, offset)
        window = wanted[offset : offset + max(1, min(limit, PAGE_ROWS))]
        config = self.source.config
        scopes = ["run", "task", *config.budgets.adapters] if config is not None else []
        return {
            "version": self.version,
            "session_id": report.session_id,
            "status": str(report.status),
            "team": report.team,
            "totals": report.totals.model_dump(mode="json"),
            "counts": dict(Counter(str(t.status) for t in report.tasks)),
            "workstations": [w.model_dump(mode="json") for w in report.workstations],
            "collisions": [c.model_dump(mode="json") for c in report.collisions],
            "spend": _spend(report),
            "budget_scopes": scopes,
            "pulls": [_pull(t) for t in report.tasks if t.pull is not None][:PAGE_ROWS],
            "matched": len(wanted),
            "offset": offset,
            "tasks": [task_row(t) for t in window],
        }


def task_row(task: TaskReport) -> dict[str, Any]:
    """One task's row: its status, phase, adapter, attempt, why it waits and its services."""
    return {
        "task_id": task.task_id,
        "status": str(task.status),
        "phase": task.current_phase,
        "phases": task.phases,
        "adapter": task.adapter,
        "attempts": task.attempts,
        "holder": ":".join(task.holder.split(":")[:2]) if task.holder else None,  # host:pid
        "waiting": task.waiting,
        "held": task.held,
        "held_until": task.held_until.isoformat() if task.held_until else None,
        "collision": task.collision,
        # its session's services: name, state, port and a failure's reason (``services.records``)
        "services": [service.model_dump(mode="json") for service in task.services],
        "cost_usd": task.cost_usd,
        "error": task.error,
    }


def _pull(task: TaskReport) -> dict[str, Any]:
    assert task.pull is not None
    return {"task_id": task.task_id, **task.pull.model_dump(mode="json")}


def _spend(report: RunReport) -> dict[str, Any] | None:
    if report.spend is None:
        return None
    return {"said": report.spend.said(), **report.spend.model_dump(mode="json")}


def _matches(task: TaskReport, status: str, query: str) -> bool:
    if status and str(task.status) != status:
        return False
    if not query:
        return True
    fields = (task.task_id, task.adapter, task.current_phase, task.waiting, task.held)
    return any(query in value.lower() for value in fields if value)
