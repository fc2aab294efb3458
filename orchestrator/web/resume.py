"""Resuming a run from the page: ``council resume FILE`` itself, started as a process of its own.

A resume is the command line's whole command (its checks, its run lock, its live run), so the
page starts exactly that: ``python -m orchestrator resume FILE`` with FILE the run config the
server was started with, in a process group of its own (a Ctrl-C to the server does not reach
it), its output discarded (what it does is what the page shows: the store). Refused first, in
the command line's words, when there is nothing to resume: the newest run ended, or its
orchestrator is alive (``council resume`` would find the run locked), or a resume this server
started still runs. The process is waited for in the server's task group.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

from orchestrator.config.origin import origin_of
from orchestrator.errors import UsageError
from orchestrator.models import SessionStatus
from orchestrator.process import procid
from orchestrator.process.launch import helper_ended, spawn_helper
from orchestrator.scheduler.context import ORCHESTRATOR
from orchestrator.web.source import WebSource

if TYPE_CHECKING:
    import anyio.abc

__all__ = ["Resumer"]


class Resumer:
    """Starts ``council resume`` for the page, one at a time."""

    def __init__(self, source: WebSource) -> None:
        self.source = source
        self._running: anyio.abc.Process | None = None

    async def resume(self, group: anyio.abc.TaskGroup) -> str:
        config = self.source.config
        origin = origin_of(config) if config is not None else None
        if origin is None:
            raise UsageError("resuming needs the run's config file: start `council web FILE`")
        if self._running is not None and self._running.returncode is None:
            raise UsageError(
                f"the resume started from this page (process {self._running.pid}) still runs"
            )
        session = await self.source.newest()
        sid = session.session_id
        if session.status == SessionStatus.ACTIVE:
            data = session.metadata.get(ORCHESTRATOR)
            running = procid.ProcessId.from_dict(data) if isinstance(data, dict) else None
            if running is None or procid.is_alive(running) is not False:
                where = (
                    f"process {running.pid} on {running.host}" if running else "its orchestrator"
                )
                raise UsageError(f"run {sid} is running ({where}): nothing to resume")
        elif session.status != SessionStatus.INTERRUPTED:
            raise UsageError(
                f"the newest run, {sid}, has ended ({session.status}): nothing to resume"
            )
        argv = [sys.executable, "-m", "orchestrator", "resume", origin.path]
        process = await spawn_helper(argv, os.environ, ())
        self._running = process
        group.start_soon(_reap, process)
        return f"council resume {origin.path} started (process {process.pid}); the page follows it"


async def _reap(process: anyio.abc.Process) -> None:
    try:
        await process.wait()
    finally:
        helper_ended(process)
