"""``EventStream``: a run's events for ``async for`` (what ``Council.events()`` returns).

- It hears every event from the moment it is made, typed (``events.catalogue.typed_event``),
  in the order they were emitted. Make it before the run starts (before starting
  ``council.run`` in a task group), or it misses what came before.
- The orchestrator never waits for it: its buffer holds at most ``limit`` events. When the
  consumer falls behind and the buffer is full, newer events are dropped and counted, and the
  first event it takes after the gap is an ``EventsDropped`` marker saying how many are
  missing there (so the buffer may hold ``limit`` events plus that marker). Nothing is ever
  reordered; the oldest events are kept because what happened first explains what follows.
- It ends when the run it saw ends (``Council.run`` or ``resume`` returned or raised), or when
  the council's ``async with`` is left, after the events buffered until then. ``aclose()``, or
  leaving ``async with stream``, ends it at once and stops it hearing more.

- ``types``: only events of those classes (``MergeCompleted``, ``TaskEvent``: a base class
  takes its subclasses) or type names (``"merge.completed"``) are buffered; ``EventsDropped``
  markers always are.
- ``report``: once the iteration has ended because ``Council.run`` or ``resume`` returned,
  the ``RunReport`` it returned (None while the run goes on, or when it raised), so one loop
  gets both the events and the report.

One consumer per stream; any number of streams at once, each with its own buffer.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable, Iterable
from types import TracebackType

import anyio

from orchestrator.events import Event
from orchestrator.events.dropped import EventsDropped
from orchestrator.run.reports.report import RunReport

__all__ = ["EventStream"]


EventKind = type[Event] | str
"""An event class (its subclasses too) or an event type name, for ``types``."""


class EventStream:
    def __init__(
        self,
        limit: int,
        forget: Callable[[EventStream], None],
        types: Iterable[EventKind] | None = None,
    ) -> None:
        self._limit = limit
        kinds = list(types) if types is not None else None
        self._classes = tuple(k for k in kinds or () if isinstance(k, type))
        self._names = frozenset(k for k in kinds or () if isinstance(k, str))
        self._filtered = kinds is not None
        self.report: RunReport | None = None
        """The run's report, once the stream ended because the run returned (module doc)."""
        self._forget = forget  # the council stops handing it events
        self._buffer: deque[Event] = deque()
        self._gap = 0  # events dropped since the last one buffered
        self.dropped = 0
        """Events dropped so far because the buffer was full."""
        self._ended = False
        self._wake: anyio.Event | None = None  # set while the consumer waits

    def put(self, event: Event) -> None:
        """Buffer ``event``, or count it dropped; never blocks (module doc)."""
        if self._ended or not self.wants(event):
            return
        if len(self._buffer) >= self._limit:
            self._gap += 1
            self.dropped += 1
            return
        self._mark_gap()
        self._buffer.append(event)
        self._wake_consumer()

    def wants(self, event: Event) -> bool:
        """Is ``event`` of a type this stream asked for (every one, without ``types``)?"""
        if not self._filtered:
            return True
        return event.type in self._names or isinstance(event, self._classes)

    def end(self, report: RunReport | None = None) -> None:
        """No more events: the consumer takes what is buffered, then the iteration stops;
        ``report`` is the run's, when it returned one."""
        if self._ended:
            return
        self.report = report
        self._mark_gap()
        self._ended = True
        self._forget(self)
        self._wake_consumer()

    async def aclose(self) -> None:
        """End at once: what is still buffered is dropped."""
        self.end()
        self._buffer.clear()

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> Event:
        while not self._buffer:
            if self._ended:
                raise StopAsyncIteration
            self._wake = anyio.Event()
            await self._wake.wait()
        return self._buffer.popleft()

    async def __aenter__(self) -> EventStream:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def _mark_gap(self) -> None:
        if self._gap:
            self._buffer.append(EventsDropped(count=self._gap))
            self._gap = 0

    def _wake_consumer(self) -> None:
        if self._wake is not None:
            self._wake.set()
            self._wake = None
