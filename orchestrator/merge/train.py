"""The merge train: merges asked for while another is under way land together, in one lock hold.

Landing is serial per base by nature: read the tip, build the merge, move the ref (or push with
a lease). Done one task at a time, every landing pays the whole of it, the team's lock and a
fetch and a push included, and a run's throughput is bounded by that sum. A train carries every
merge that is ready when it leaves: one lock hold, one read of the base, the merge commits built
one on another in the order they were asked for, one ref update (one push on a remote).

Who boards: every ``MergeQueue.merge`` call hands in a ``Ticket`` and waits. When no train is
under way, the caller leads the next one: it takes the lock, boards every ticket queued by then
(at most ``limit``, one per task), lets the queue run them and settles each ticket with its own
result or error; the others wake and return theirs. A merge asked for while a train runs waits
for the next, whose leader is one of those waiting.

Nothing is ever left without a leader: a leader cancelled while it waits for the lock, or cut
short half-way, puts back every ticket its train did not settle (at the front, in their order)
and steps down; a waiting caller then leads. A ticket whose caller was cancelled before its
train left is withdrawn; once boarded, it rides to the end (its landing may still happen: the
next attempt of that task finds it landed, by the ``Council-Task`` trailer).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass

import anyio

from orchestrator.merge.attempt import Request
from orchestrator.merge.types import MergeResult

__all__ = ["Boarding", "Ticket"]


@dataclass(eq=False)
class Ticket:
    """One ``merge`` call's place in the train; settled with exactly one of result or error."""

    request: Request
    asked: float  # time.perf_counter() when the merge was asked for
    boarded: float = 0.0  # when its train left (the lock held)
    result: MergeResult | None = None
    error: Exception | None = None

    @property
    def settled(self) -> bool:
        return self.result is not None or self.error is not None


Lead = Callable[[list[Ticket], object, Callable[[], list[Ticket]]], Awaitable[None]]
"""Runs one train: settles each of the boarded tickets it can; given what the lock's context
manager gave (``attempts.TakesInCall``: the lock's taking rides in the train's first call)
and a call that boards the tickets queued since, before the train's first attempt (a lock
another process held was waited for in that call)."""


class Boarding:
    """The tickets waiting for the next train of one merge queue, and who leads it."""

    def __init__(self, limit: int) -> None:
        self.limit = max(1, limit)
        self._queued: list[Ticket] = []
        self._leading = False
        self._turn: anyio.Event | None = None  # set when a train ends: the waiting look again

    @property
    def queued(self) -> int:
        return len(self._queued)

    async def ride(
        self,
        ticket: Ticket,
        lock: Callable[[], AbstractAsyncContextManager[object]],
        lead: Lead,
    ) -> None:
        """Wait until ``ticket`` is settled, leading a train (under ``lock()``) when none is
        under way."""
        self._queued.append(ticket)
        try:
            while not ticket.settled:
                if self._leading:
                    await self._wait_turn()
                    continue
                await self._lead(lock, lead)
        finally:
            if not ticket.settled and ticket in self._queued:
                self._queued.remove(ticket)  # cancelled before its train left

    async def _wait_turn(self) -> None:
        if self._turn is None:
            self._turn = anyio.Event()  # created inside the event loop that uses it
        await self._turn.wait()

    async def _lead(
        self, lock: Callable[[], AbstractAsyncContextManager[object]], lead: Lead
    ) -> None:
        self._leading = True
        boarded: list[Ticket] = []
        try:
            async with lock() as held:
                boarded = self._board()

                def more() -> list[Ticket]:
                    came = self._board(self.limit - len(boarded), boarded)
                    boarded.extend(came)
                    return came

                await lead(boarded, held, more)
        finally:
            unsettled = [t for t in boarded if not t.settled]
            self._queued[:0] = unsettled  # the next leader takes them first
            self._leading = False
            turn, self._turn = self._turn, None
            if turn is not None:
                turn.set()

    def _board(self, limit: int | None = None, aboard: list[Ticket] | None = None) -> list[Ticket]:
        """The queued tickets, oldest first, up to ``limit`` (the train's) and one per task,
        none of a task ``aboard`` (a second merge of one task waits for the next train, which
        then finds the first one's landing)."""
        now = time.perf_counter()
        boarded: list[Ticket] = []
        tasks: set[str] = {t.request.task_id for t in aboard or ()}
        for ticket in list(self._queued):
            if len(boarded) >= (self.limit if limit is None else limit):
                break
            if ticket.request.task_id in tasks:
                continue
            tasks.add(ticket.request.task_id)
            ticket.boarded = now
            boarded.append(ticket)
            self._queued.remove(ticket)
        return boarded
