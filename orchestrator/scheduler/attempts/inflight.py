"""The attempts in flight and the capacity slots they hold.

An attempt takes its slot when it is launched and gives it back as soon as its CLI work is
over (``cli_done``: a merge that waits holds no slot), at the latest when it ends (``end``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from orchestrator.config.sections import CapacityConfig
from orchestrator.events import Event
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.lifecycle import Stage
from orchestrator.scheduler.rules.capacity import Slots

__all__ = ["InFlight"]


class InFlight:
    def __init__(self, capacity: CapacityConfig) -> None:
        self._slots = Slots(capacity)
        self._running: dict[str, Attempt] = {}

    # -- capacity -------------------------------------------------------------------------

    def full(self) -> bool:
        return self._slots.full()

    def free(self, adapter: str, phase: str | None) -> bool:
        """A slot is free for a session of ``adapter`` in ``phase``."""
        return self._slots.free(adapter, phase)

    # -- the attempts ---------------------------------------------------------------------

    def launch(self, attempt: Attempt) -> None:
        self._slots.take(attempt.key, attempt.adapter, attempt.phase)
        self._running[attempt.key] = attempt

    def track(self, attempt: Attempt) -> None:
        """An attempt with no CLI work (a relanding): in flight, its claim renewed, no slot."""
        self._running[attempt.key] = attempt
        attempt.move(Stage.SETTLING)

    def cli_done(self, attempt: Attempt) -> None:
        """The attempt's CLI work is over: its slot goes back while it settles or merges."""
        self._slots.give_back(attempt.key)
        attempt.move(Stage.SETTLING)

    def end(self, attempt: Attempt) -> None:
        self._slots.give_back(attempt.key)
        self._running.pop(attempt.key, None)

    def get(self, key: str) -> Attempt | None:
        return self._running.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self._running

    def __iter__(self) -> Iterator[Attempt]:
        return iter(list(self._running.values()))

    def __len__(self) -> int:
        return len(self._running)

    def group_busy(self, group: str) -> bool:
        """A candidate of council task ``group``, or its council step, is in flight."""
        return any(a.group == group or a.key == group for a in self._running.values())

    def holding(self, files: frozenset[str], group: str | None) -> tuple[str, Attempt] | None:
        """The first of ``files`` another attempt in flight declared, and that attempt (a
        council candidate's siblings, which share its files, do not count); None if none."""
        for other in self._running.values():
            if group is not None and other.group == group:
                continue
            shared = sorted(files & other.files)
            if shared:
                return shared[0], other
        return None

    def listener(
        self, attempt: Attempt, forward: Callable[[Event], None]
    ) -> Callable[[Event], None]:
        """The attempt's workflow events: its phase moves its slot, its last message is kept
        (``council status`` shows it), and every event goes on to ``forward``."""

        def heard(event: Event) -> None:
            data = event.data  # a new dict per access (the event's JSON form): taken once
            phase = data.get("phase")
            if isinstance(phase, str) and phase != attempt.phase:
                attempt.phase = phase
                self._slots.move(attempt.key, phase)
            text = data.get("text") or data.get("message")
            if isinstance(text, str) and text:
                attempt.last_message = text[:200]
            forward(event)

        return heard
