"""The blocking work on each side of a phase's CLI, one worker-thread call a side (issue 51).

Before the CLI (``Opening``): the tamper guard's look (``TamperGuard.arming``: armed before
the CLI starts) and the council server's socket (``PhaseTools.open``), then the spend ledger's
record of the call, opened: all in the record's own worker-thread call
(``SpendGate.open_then``), or a call of their own where no ledger is kept. The record is
durable before the CLI process starts (a crash after it leaves the call open, counted at its
forecast, for ``settle`` to close on resume); a look or socket that fails writes no record
for a CLI that never started. Whatever is undone there (``Opening.undo``): the window closed,
the socket removed.

After the CLI, once it is gone (``Closing``): the socket removed, then the tamper guard's look
after (``TamperGuard.finishing``), then the ledger's record closed: one worker-thread call, the
record's close (``MeteredCall.close_then``). What the look raises is carried past the write,
so the call is recorded closed however the look ends, then raised by ``Closing.finish``. On a
failing path (the ledger's record closed by ``MeteredCall.failing``), the socket and the look
take one call of their own.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.workflow.task_run import OpenedTools, PhaseTools
from orchestrator.worktrees.tamper.guard import Arming, Finishing
from orchestrator.worktrees.tamper.watch import FinishLook, Snapshot, Tampering, Watch

__all__ = ["Closing", "Opening"]

log = logging.getLogger(__name__)

Looked = tuple[list[Path], Snapshot | None]


@dataclass
class Opening:
    """What precedes one phase's CLI: ``open`` (blocking, once), then ``armed``; or ``undo``."""

    arming: Arming
    tools: PhaseTools | None
    opened: OpenedTools | None = None
    _handed: bool = field(default=False, repr=False)  # the window is the watch's (``armed``)

    raised: bool = False  # ``open`` raised: the look's or the socket's failure, not the record's

    def open(self) -> Looked:
        """The guard's look, then the council server's socket (blocking: one worker-thread
        call, the ledger record's where there is one)."""
        try:
            looked = self.arming.look()
            if self.tools is not None:
                self.opened = self.tools.open()
        except BaseException:
            self.raised = True
            raise
        return looked

    async def armed(self, looked: Looked) -> Watch:
        """The guard's ``Watch`` from what ``open`` looked at (the guard closes the window
        when this raises)."""
        self._handed = True
        return await self.arming.armed(looked)

    async def undo(self) -> None:
        """The CLI is not started: the guard's window closed, the socket removed."""
        if not self._handed:
            self.arming.abandon()
        opened, self.opened = self.opened, None
        if opened is not None:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(opened.remove)


@dataclass
class Closing:
    """What follows one phase's CLI, once it is gone: ``close`` (blocking, once, in the
    ledger record's close where there is one), then ``finish``."""

    finishing: Finishing
    opened: OpenedTools | None
    _looked: FinishLook | None = field(default=None, repr=False)
    _failed: BaseException | None = field(default=None, repr=False)
    _closed: bool = field(default=False, repr=False)

    def close(self) -> None:
        """The socket removed, then the guard's look after the CLI; what the look raises is
        kept for ``finish`` (the ledger's record is written after it all the same)."""
        self._closed = True
        if self.opened is not None:
            try:
                self.opened.remove()
            except OSError as exc:  # a directory left in /tmp: ``sweep_stale``'s, later
                log.warning("the council server's socket could not be removed: %s", exc)
        try:
            self._looked = self.finishing.look()
        except Exception as exc:  # raised by ``finish``, after the record's write
            self._failed = exc

    async def finish(self) -> Tampering | None:
        """What of the look after the CLI is this session's (``None``: nothing); ``close``
        first, in a worker-thread call of its own, when no ledger record's close ran it."""
        if not self._closed:
            await anyio.to_thread.run_sync(self.close)
        looked, failed = self._looked, self._failed
        if looked is None:
            self.finishing.abandon()
            assert failed is not None
            raise failed
        return await self.finishing.judged(looked)
