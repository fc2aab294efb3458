"""PostgreSQL's ``ChangeSource``: the record writes the store's listener hears through
LISTEN/NOTIFY (``listener``), this store's own and every other workstation's.

Entering a stream starts the store's listener if it is not running and returns once LISTEN is
in place, so every write committed from then on is heard; what was heard before that (the
resync every new LISTEN sends) is dropped, as the stream promises nothing earlier. Notices
are buffered here as the listener hands them over, so a cancelled wait loses none.
"""

from __future__ import annotations

import anyio

from orchestrator.state.changes import RecordChange
from orchestrator.state.postgres.listener import PgListener

__all__ = ["NoticeChanges"]


class NoticeChanges:
    def __init__(self, listener: PgListener) -> None:
        self._listener = listener
        self._heard: list[RecordChange] = []
        self._wake: anyio.Event | None = None
        self._hearing = False
        self._started = False

    async def start(self) -> None:
        if self._started:
            return
        if not self._hearing:  # once, even when a start cut short is tried again
            self._listener.hear(self._hand)
            self._hearing = True
        await self._listener.listening()
        self._heard.clear()
        self._started = True

    async def wait(self) -> list[RecordChange]:
        await self.start()
        while not self._heard:
            self._wake = anyio.Event()
            await self._wake.wait()
        heard, self._heard = self._heard, []
        return heard

    async def aclose(self) -> None:
        self._listener.unhear(self._hand)

    def _hand(self, changes: list[RecordChange]) -> None:
        self._heard += changes
        if self._wake is not None:
            self._wake.set()
            self._wake = None
