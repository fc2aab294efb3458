"""Calls a dead orchestrator left open, closed when the run is taken up again.

When the run's gate has read the ledger (``Spending.open``: a new run, a ``council resume``, a
workstation joining a team's run), each of the run's calls still open is looked at once. It
must have run on this machine (``LedgerEntry.host``), and the orchestrator that started it
(its pid is in its log's name, ``process.output.log_name``) must be gone, or have started
after the call did (its pid taken again). Such a call is closed from its log under this
workstation's log directory (``LedgerEntry.log``; none written: killed as its CLI started) by
``spend.settle``, read by its adapter in a worker thread; the gate counts it at that figure
from now on. Another machine's call, or one whose orchestrator still runs, is left as it is
(counted at its forecast until its own orchestrator closes it).
"""

from __future__ import annotations

import logging
import os
import re
import stat
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import AdapterError, CouncilError
from orchestrator.models import utcnow
from orchestrator.process import procid, ps
from orchestrator.runner.phase import again_log
from orchestrator.safety import safe_write
from orchestrator.scheduler.context import Services
from orchestrator.spend.gate import SpendGate
from orchestrator.spend.ledger import Ledger, LedgerEntry
from orchestrator.spend.settle import LogUsage, Parse, closed_from, usage_in_log

__all__ = ["settle_left_open"]

log = logging.getLogger(__name__)

_WRITER = re.compile(r"-(?P<pid>\d+)-\d+\.log$")  # ``log_name``'s ``-<pid>-<n>.log``


async def settle_left_open(services: Services, gate: SpendGate) -> list[LedgerEntry]:
    """Close the run's calls a dead orchestrator of this machine left open (module doc)."""
    left = [entry for entry in gate.left_open() if entry.log]
    if not left:
        return []
    ledger, closed = Ledger(services.store), []
    for entry in left:
        parse = _parser(services, entry.adapter)
        if parse is None:
            continue
        said = await anyio.to_thread.run_sync(_read, services.log_dir, entry, parse)
        if said is None:
            continue
        settled = closed_from(entry, said, services.config.prices, utcnow())
        if not await ledger.settled(settled):
            continue  # closed meanwhile by its own orchestrator or another successor
        await gate.settled(settled)
        closed.append(settled)
        figure = f"${settled.cost_usd:.6g}" if settled.cost_usd is not None else "no price"
        log.warning(
            "call %s (task %s, %s on %s) was left open by an orchestrator that died: closed "
            "from its log at %s (%s)",
            entry.call,
            entry.task,
            entry.phase,
            entry.adapter,
            figure,
            "its final figure" if said.final else settled.cost_source,
        )
    return closed


def _parser(services: Services, adapter: str) -> Parse | None:
    try:
        made = services.plugins.registry.create(adapter, services.config.adapters.get(adapter))
    except (AdapterError, CouncilError) as exc:
        log.warning("the log of a call on %r cannot be read: %s", adapter, exc)
        return None
    return made.parse_line


def _read(log_dir: Path, entry: LedgerEntry, parse: Parse) -> LogUsage | None:
    """What the call's log says it spent; None when the call is not this machine's, its
    orchestrator still runs, or it has no log (its CLI never started, or was killed before
    its log was made: left open, counted at its forecast, as the ledger counts any)."""
    assert entry.log is not None
    if entry.host != procid.current().host or not _writer_gone(entry.log, entry.started_at):
        return None
    first = log_dir / entry.log
    if not first.is_file() or first.is_symlink():
        return None  # never started, or killed before its log: spent nothing it said
    return usage_in_log(_lines(log_dir, [entry.log, again_log(entry.log)]), parse)


def _lines(log_dir: Path, names: list[str | None]) -> Iterator[str]:
    """The lines of each log in turn (one missing, or not a file: none of it)."""
    for name in names:
        if name is None or "/" in name or name.startswith("."):
            continue
        try:  # never through a link, never waiting on a FIFO put in its place
            fd = safe_write.open_file(log_dir, log_dir / name, os.O_RDONLY | os.O_NONBLOCK)
        except (OSError, CouncilError):
            continue
        with open(fd, encoding="utf-8", errors="replace") as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                continue
            yield from file


def _writer_gone(name: str, started: datetime) -> bool:
    """Whether the orchestrator that wrote the log ``name`` is gone: no process has its pid,
    or the one that has it started after the call did."""
    found = _WRITER.search(name)
    if found is None:
        return False
    pid = int(found["pid"])
    if pid == os.getpid():
        return False
    proc = ps.process(pid)
    if proc is None or ps.ended(proc):
        return True
    created = ps.ask(proc.create_time, None)
    return created is not None and created > started.timestamp()
