"""Each session's own range of ports (issue 50), for a tool that insists on one.

``SessionPortsPart`` is the scheduler's part (``parts.RunPart``), listed for every run: its
session claims a block of ports (``services.ports.claim``) in the worker-thread call that forks
the attempt's new worktree (``with_fork``: no hop of its own), else (a kept or adopted worktree)
at the attempt's first phase, in a call of its own; the block is given to
its CLI and its verify commands as ``COUNCIL_PORT`` and ``COUNCIL_PORTS`` through the session's
side (``sandbox.commands.SessionSide``, beside its services' variables), the same block for
every phase of the attempt; the block is let go when the attempt ends, when the run's loop is
over, and by the kernel when the orchestrator dies. Where no block is free the session goes
without, said once.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import anyio.to_thread

from orchestrator.sandbox.commands import SessionSide
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.parts import RunPart
from orchestrator.services.ports import PortBlock, claim

__all__ = ["SessionPortsPart"]

log = logging.getLogger(__name__)


class SessionPortsPart(RunPart):
    """One block of ports per attempt's session (module doc)."""

    def __init__(self) -> None:
        self.blocks: dict[Attempt, PortBlock | None] = {}
        # Claimed in a worktree's forking call (a worker thread): each holds its block once
        # that call has run, taken into ``blocks`` on the event loop.
        self._forked: dict[Attempt, list[PortBlock | None]] = {}
        self._said = False

    def with_fork(self, attempt: Attempt, session_id: str) -> Callable[[], None] | None:
        if attempt in self.blocks or attempt in self._forked:
            return None
        held: list[PortBlock | None] = []
        self._forked[attempt] = held
        return lambda: held.append(_claimed(session_id))

    async def phase_starting(self, attempt: Attempt, phase: str) -> SessionSide | None:
        forked = self._forked.pop(attempt, [])
        if forked and attempt not in self.blocks:
            self.blocks[attempt] = forked[0]
        if attempt not in self.blocks:
            key = attempt.session.session_id if attempt.session is not None else attempt.key
            self.blocks[attempt] = await anyio.to_thread.run_sync(_claimed, key)
        block = self.blocks[attempt]
        if block is None and not self._said:
            self._said = True
            log.warning("no free block of ports: sessions go without COUNCIL_PORTS")
        return SessionSide(env=block.env()) if block is not None else None

    async def ended(self, attempt: Attempt) -> None:
        for block in (self.blocks.pop(attempt, None), *self._forked.pop(attempt, [])):
            if block is not None:
                block.close()

    async def left(self) -> None:
        while self.blocks:
            _, block = self.blocks.popitem()
            if block is not None:
                block.close()
        while self._forked:
            _, forked = self._forked.popitem()
            for each in forked:
                if each is not None:
                    each.close()


def _claimed(key: str) -> PortBlock | None:
    """``key``'s block, or None (said): it never raises, so it may ride another room's call."""
    try:
        return claim(key)
    except Exception as exc:  # the user's state directory cannot be written: go without
        log.warning("no block of ports could be claimed: %s", exc)
        return None
