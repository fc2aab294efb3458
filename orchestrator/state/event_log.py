"""The append-only ``events.jsonl`` and its in-process subscribers.

Lines are appended with one ``write`` on an ``O_APPEND`` descriptor, so lines from several
processes never interleave. The log is not fsynced: it is the audit trail, and the state
records (which are durable) remain the truth after a crash.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from orchestrator.events import Event, Subscriber

__all__ = ["EventLog"]

log = logging.getLogger(__name__)


class EventLog:
    def __init__(self, path: Path) -> None:
        self.path = path
        self._fd: int | None = None
        self._subscribers: list[Subscriber] = []

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def write(self, events: Sequence[Event]) -> None:
        """Append events to the file (blocking: call from a worker thread)."""
        if not events:
            return
        data = b"".join(e.model_dump_json().encode() + b"\n" for e in events)
        try:
            if self._fd is None:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
                self._fd = os.open(self.path, flags, 0o644)
            os.write(self._fd, data)
        except OSError as exc:
            # The audit trail must never take a state write down with it.
            log.warning("cannot append to %s: %s", self.path, exc.strerror or exc)

    def notify(self, events: Sequence[Event]) -> None:
        """Hand events to subscribers; a failing subscriber is logged, never fatal."""
        for event in events:
            if event.level == "warning":
                log.warning("%s %s", event.type, event.data)
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception:
                    log.exception("event subscriber %r failed on %s", subscriber, event.type)

    def read(self) -> Iterator[Event]:
        """Every event in the file, oldest first; a torn last line is skipped."""
        try:
            with self.path.open("rb") as handle:
                for line in handle:
                    if line.endswith(b"\n"):
                        yield Event.model_validate_json(line)
        except FileNotFoundError:
            return

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
