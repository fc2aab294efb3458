"""Hearing other workstations' writes as they commit: one connection that LISTENs.

Each store has one ``PgListener``: a dedicated autocommit connection (outside the pool, so it
never holds a pooled connection nor is recycled by it) that runs ``LISTEN council_events`` and
hands every other process's task write to the store's subscribers (``notices``). It runs as
an asyncio task of its own, started by the store's first subscriber, and ends in ``aclose``
with its connection closed.

Notifications are not kept for a listener that is not connected: those sent while its
connection was down (a database restart, a failover, the network) are lost. So when the
connection drops it connects again with backoff, LISTENs first and only then tells the
subscribers to read everything again (a ``state.resync`` event), so that a write landing
between the two is heard either way. The first LISTEN is followed by a resync as well: writes
made between a subscriber's first read and the LISTEN would otherwise go unheard. A dead peer
that sends nothing is found by the TCP keepalives every connection carries (``connection``).
The scheduler's periodic full read stays the fallback for anything missed all the same.

Watchers (``watch``, ``wait_for_update``) hear it too (``hear``): every record write, this
store's own included, as a ``RecordChange``, and ``RESYNC`` whenever LISTEN is put in place.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable

import psycopg
from psycopg import AsyncConnection, sql

from orchestrator.events import Event
from orchestrator.state.changes import RESYNC, RecordChange
from orchestrator.state.postgres.connection import connection_kwargs, describe
from orchestrator.state.postgres.core import CHANNEL
from orchestrator.state.postgres.notices import record_change, remote_event, resync

__all__ = ["BACKOFF", "PgListener"]

log = logging.getLogger(__name__)

BACKOFF = (0.1, 2.0)  # seconds before connecting again: first, and at most (doubling)


class PgListener:
    def __init__(self, conninfo: str, origin: str, deliver: Callable[[list[Event]], None]) -> None:
        self._conninfo = conninfo
        self._origin = origin
        self._deliver = deliver
        self._task: asyncio.Task[None] | None = None
        self._listening = asyncio.Event()
        self._closed = False
        self.connections = 0  # how many times LISTEN was put in place (tests, diagnostics)
        self._hearers: list[Callable[[list[RecordChange]], None]] = []

    @property
    def running(self) -> bool:
        return self._task is not None and not self._task.done()

    def start(self) -> bool:
        """Start listening in the background, if not already; False when it cannot start
        here (no running event loop, or closed)."""
        if self._closed or self.running:
            return not self._closed
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return False  # subscribed outside the event loop: ``listening()`` starts it
        self._task = loop.create_task(self._run(), name="council-listener")
        return True

    async def listening(self) -> None:
        """Wait until LISTEN is in place (starting the listener if needed); waits as long as
        the database cannot be reached, so give it a deadline of your own."""
        if not self.start():
            raise RuntimeError("the listener of a closed store cannot start")
        await self._listening.wait()

    def hear(self, hearer: Callable[[list[RecordChange]], None]) -> None:
        """Hand ``hearer`` every record write heard from now on (module doc)."""
        self._hearers.append(hearer)

    def unhear(self, hearer: Callable[[list[RecordChange]], None]) -> None:
        if hearer in self._hearers:
            self._hearers.remove(hearer)

    def _tell(self, changes: list[RecordChange]) -> None:
        for hearer in list(self._hearers):
            hearer(changes)

    async def aclose(self) -> None:
        """Stop listening and close the connection; waits for the task to end."""
        self._closed = True
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():
                raise  # the caller itself is being cancelled, not only the listener

    async def _run(self) -> None:
        delay = BACKOFF[0]
        while True:
            connections = self.connections
            try:
                await self._listen()
            except psycopg.Error as exc:  # the connection lost, the server away or starting
                self._listening.clear()
                first = str(exc).strip().splitlines()[:1]
                log.info(
                    "not hearing other workstations through %s (%s); connecting again",
                    describe(self._conninfo),
                    first[0] if first else type(exc).__name__,
                )
            # Back off only while connecting fails, not after a connection that served.
            delay = BACKOFF[0] if self.connections > connections else min(delay * 2, BACKOFF[1])
            await asyncio.sleep(delay)

    async def _listen(self) -> None:
        async with await AsyncConnection.connect(
            self._conninfo, autocommit=True, **connection_kwargs()
        ) as conn:
            await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(CHANNEL)))
            self.connections += 1
            self._listening.set()
            self._deliver([resync("listening now: writes before may have gone unheard")])
            self._tell([RESYNC])
            async for note in conn.notifies():
                change = record_change(note.payload)
                if change is not None:
                    self._tell([change])
                event = remote_event(note.payload, self._origin)
                if event is not None:
                    self._deliver([event])
