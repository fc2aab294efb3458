"""Who hears a ``Council``'s events: the callbacks given to ``subscribe`` and the streams
``events()`` returns (``run.event_stream``).

Every callback hears the store's events (state, claims, merges, the scheduler's ``task.*`` and
``run.*``) and, through the scheduler, the CLIs' output (``PHASE_EVENT``): the workflow hands
its phase lifecycle events to both, so that is all a callback takes from the scheduler. The
streams are one more callback: each event typed (``events.catalogue``), put in every stream,
which never makes the run wait; they end, with the run's report when there is one, when the
run does.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING

from orchestrator.events import Event
from orchestrator.run.reports.report import RunReport
from orchestrator.runner.phase import PHASE_EVENT
from orchestrator.scheduler.scheduler import Scheduler
from orchestrator.state import StateStore

if TYPE_CHECKING:  # made only when a caller asks for a stream (`Council.events`)
    from orchestrator.run.event_stream import EventStream

__all__ = ["Callback", "Listeners"]

Callback = Callable[[Event], None]


class Listeners:
    """The subscribers and event streams of one ``Council`` (module doc)."""

    def __init__(self) -> None:
        self._streams: list[EventStream] = []
        self.subscribers: list[Callback] = [self._fan_out]  # the streams hear every event

    def stream(self, buffer: int, types: Iterable[type[Event] | str] | None) -> EventStream:
        """A new event stream (``Council.events``), checked: ``buffer`` at least 1, ``types``
        a list of event classes or type names."""
        if isinstance(buffer, bool) or not isinstance(buffer, int) or buffer < 1:
            raise ValueError(f"events(buffer={buffer!r}): the buffer must hold at least 1 event")
        if isinstance(types, str | type):
            raise ValueError("events(types=...): a list of event classes or type names")
        from orchestrator.run.event_stream import EventStream

        stream = EventStream(buffer, forget=self._streams.remove, types=types)
        self._streams.append(stream)
        return stream

    @staticmethod
    def attach(store: StateStore, scheduler: Scheduler, callback: Callback) -> None:
        """Make ``callback`` hear the run's events (module doc)."""
        store.subscribe(callback)

        # The workflow hands its phase lifecycle events to the store and to the scheduler
        # (which tracks phases for its slots); only the CLI output events come through the
        # scheduler alone, so that is all a subscriber takes from it.
        def cli_output_only(event: Event) -> None:
            if event.type == PHASE_EVENT:
                callback(event)

        scheduler.listeners.append(cli_output_only)

    def end(self, report: RunReport | None = None) -> None:
        """End every stream, each given ``report`` when there is one."""
        for stream in list(self._streams):
            stream.end(report)

    def _fan_out(self, event: Event) -> None:
        if self._streams:
            # imported here: the catalogue imports every event family, which a run with no
            # stream (the `council` command's) never needs
            from orchestrator.events.catalogue import typed_event

            event = typed_event(event)  # an emitter of a plugin's may have sent it untyped
            for stream in list(self._streams):
                stream.put(event)
