"""Each session's own range of ports (issue 50), for a tool that insists on one.

``SessionPortsPart`` is the scheduler's part (``parts.RunPart``), listed for every run: at an
attempt's first phase its session claims a block of ports (``services.ports.claim``), given to
its CLI and its verify commands as ``COUNCIL_PORT`` and ``COUNCIL_PORTS`` through the session's
side (``sandbox.commands.SessionSide``, beside its services' variables), the same block for
every phase of the attempt; the block is let go when the attempt ends, when the run's loop is
over, and by the kernel when the orchestrator dies. Where no block is free the session goes
without, said once.
"""

from __future__ import annotations

import logging

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
        self._said = False

    async def phase_starting(self, attempt: Attempt, phase: str) -> SessionSide | None:
        if attempt not in self.blocks:
            key = attempt.session.session_id if attempt.session is not None else attempt.key
            block = await anyio.to_thread.run_sync(_claimed, key)
            self.blocks[attempt] = block
            if block is None and not self._said:
                self._said = True
                log.warning("no free block of ports: sessions go without COUNCIL_PORTS")
        block = self.blocks[attempt]
        return SessionSide(env=block.env()) if block is not None else None

    async def ended(self, attempt: Attempt) -> None:
        block = self.blocks.pop(attempt, None)
        if block is not None:
            block.close()

    async def left(self) -> None:
        while self.blocks:
            _, block = self.blocks.popitem()
            if block is not None:
                block.close()


def _claimed(key: str) -> PortBlock | None:
    try:
        return claim(key)
    except OSError as exc:  # the user's state directory cannot be written: go without
        log.warning("no block of ports could be claimed: %s", exc)
        return None
