"""The append-only ``events.jsonl`` and its in-process subscribers.

Lines are appended with one ``write`` on an ``O_APPEND`` descriptor, so lines from several
processes never interleave. The log is not fsynced: it is the audit trail, and the state
records (which are durable) remain the truth after a crash.

A full or failing disk never takes a state write down with it: the append is dropped with one
warning naming the file (not one per event while the disk stays full), and a count of what was
lost once appends work again. An append that failed or was cut short by a dying process may
leave part of a line behind, so the next append of this process, and the first of any
process, starts on a fresh line; readers skip any line that is not a whole event (a torn
tail, a damaged byte) and count it, instead of failing on the rest of the log.

Two ways in, one order out:

- ``write`` (blocking) is what the store's own worker-thread calls use: their events are
  appended before the call returns;
- ``post`` is for an event on its own (``StateStore.emit``) from the event loop: it never
  touches the disk itself, so an event costs no worker-thread hop. The line is queued and a
  writer thread of the log's own appends it at once, together with whatever else queued
  meanwhile. ``flush`` (also done by ``read`` and ``close``) waits for the queue to be empty.

Both go through one queue, taken and written under one lock, so the file keeps the order in
which events were handed over.

Rotation (``event_archive``): once the file holds ``rotate_bytes``, the process whose append
found it so renames it to an archive; every process checks, at most once a second, that its
descriptor is still the file's (the inode) and opens the new file when it is not. ``read``
reads the archives first, so history goes on across rotations.

No secret is written or handed on: each event's strings are masked (``secret_mask``) as it is
encoded for the file and before subscribers (the live table, plugins, the log) see it.
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path

from pydantic import ValidationError

from orchestrator.event_text import sentence
from orchestrator.events import Event, Subscriber
from orchestrator.safety.secret_mask import masked_model, masked_with_json
from orchestrator.state.file.fsops import FileOperations, FileOps
from orchestrator.state.file.log.event_archive import archive_lines, archives, rotate, trim_archives

__all__ = ["DEFAULT_ROTATE_BYTES", "EventLog"]

log = logging.getLogger(__name__)

_IDLE = 5.0  # seconds a writer thread waits for more events before it ends
_RECHECK = 1.0  # seconds between checks that the descriptor is still the file's
DEFAULT_ROTATE_BYTES = 64 * 1024 * 1024


class EventLog:
    def __init__(
        self,
        path: Path,
        ops: FileOperations | None = None,
        *,
        rotate_bytes: int | None = DEFAULT_ROTATE_BYTES,
    ) -> None:
        self.path = path
        self.rotate_bytes = rotate_bytes  # None: never rotated
        self.ops = ops or FileOps()
        self.ops.confine(path.parent)  # a store's ops reach it from the store's anchor already
        self.skipped = 0  # lines ``read`` could not parse
        self._fd: int | None = None
        self._lost = 0  # events dropped since appends last worked
        self._subscribers: list[Subscriber] = []
        self._queued: list[bytes] = []
        self._queue_lock = threading.Condition(threading.Lock())  # guards _queued, _writer
        self._write_lock = threading.Lock()  # held while lines are taken and written
        self._writer: threading.Thread | None = None
        self._closing = False
        self._failed: BaseException | None = None  # what stopped the writer thread
        self._checked = 0.0  # when the descriptor was last checked against the file
        self.recheck = _RECHECK  # seconds between those checks (tests make it 0)

    def subscribe(self, subscriber: Subscriber) -> None:
        self._subscribers.append(subscriber)

    def unsubscribe(self, subscriber: Subscriber) -> None:
        if subscriber in self._subscribers:
            self._subscribers.remove(subscriber)

    def write(self, events: Sequence[Event]) -> None:
        """Append events to the file now (blocking: call from a worker thread)."""
        if events:
            self._write_lines(_encode(events))

    def write_masked(self, events: Sequence[Event]) -> list[Event]:
        """``write``, each event looked through for secrets once: the events as masked, for
        ``notify(..., masked=True)`` (a batch's hundreds are not looked through again on the
        event loop)."""
        told: list[Event] = []
        lines: list[bytes] = []
        for event in events:
            masked, data = masked_with_json(event)
            told.append(masked)
            lines.append(data + b"\n")
        if lines:
            self._write_lines(b"".join(lines))
        return told

    def _write_lines(self, lines: bytes) -> None:
        with self._write_lock:
            with self._queue_lock:
                data = b"".join([*self._queued, lines])
                self._queued.clear()
            self._append(data)

    def post(self, events: Sequence[Event]) -> None:
        """Queue events for the writer thread (never blocks on the disk)."""
        if not events:
            return
        data = _encode(events)
        with self._queue_lock:
            self._queued.append(data)
            if self._writer is None and not self._closing:
                self._writer = threading.Thread(
                    target=self._drain, name="council-event-log", daemon=True
                )
                self._writer.start()
            self._queue_lock.notify()

    def flush(self) -> None:
        """Append whatever is queued (blocking). What stopped the writer thread (anything but
        the disk refusing, which ``_append`` takes in its stride) is raised here, once."""
        with self._write_lock:
            failed, self._failed = self._failed, None
            if failed is not None:
                raise failed
            with self._queue_lock:
                data = b"".join(self._queued)
                self._queued.clear()
            if data:
                try:
                    self._append(data)
                except BaseException as exc:
                    if threading.current_thread() is self._writer:
                        self._failed = exc  # for the next caller who waits for the log
                    raise

    def notify(self, events: Sequence[Event], *, masked: bool = False) -> None:
        """Hand events to subscribers; a failing subscriber is logged, never fatal.
        ``masked``: they are ``write_masked``'s already (looked through once, in the worker
        thread that wrote them, not again on the event loop)."""
        for event in events if masked else map(masked_model, events):
            if event.level == "warning":
                # The data stays in the event; the type lets a command that already says
                # the event as a line of its own skip saying it again.
                log.warning("%s", sentence(event), extra={"council_event": event.type})
            for subscriber in list(self._subscribers):
                try:
                    subscriber(event)
                except Exception:
                    log.exception("event subscriber %r failed on %s", subscriber, event.type)

    def read(self, *, archived: bool = True) -> Iterator[Event]:
        """Every whole event, oldest first (the archives' first unless ``archived`` is
        False), each as its type's model where it fits one (``events.catalogue.read_event``);
        other lines are skipped and counted in ``skipped``."""
        # The catalogue builds a model per event type (tens of ms): only readers pay for it,
        # not every command that opens the store (``council status``).
        from orchestrator.events.catalogue import read_event

        self.flush()
        self.skipped = 0
        for line in self._lines(archived):
            if not line.endswith(b"\n"):
                self.skipped += 1  # torn by a crash or a full disk mid-append
                continue
            if not line.strip():
                continue
            try:
                yield read_event(line)
            except ValidationError:
                self.skipped += 1

    def _lines(self, archived: bool) -> Iterator[bytes]:
        for archive in archives(self.path) if archived else []:
            yield from archive_lines(archive)
        try:
            with self.path.open("rb") as handle:
                yield from handle
        except FileNotFoundError:
            return

    def archives(self) -> list[Path]:
        """The rotated archives, oldest first (``event_archive``)."""
        return archives(self.path)

    def trim_archives(self, before: datetime | None) -> int:
        """Remove the archives whose events all predate ``before`` (all when None); how
        many (blocking)."""
        return trim_archives(self.path, before, self.ops)

    def size(self) -> int:
        """Bytes in the log and its archives (blocking)."""
        total = 0
        for path in [*archives(self.path), self.path]:
            try:
                total += path.stat().st_size
            except FileNotFoundError:
                continue
        return total

    def close(self) -> None:
        with self._queue_lock:
            self._closing = True
            writer, self._writer = self._writer, None
            self._queue_lock.notify()
        if writer is not None:
            writer.join()
        self.flush()
        with self._write_lock:
            fd, self._fd = self._fd, None
            if fd is not None:
                self.ops.close(fd)
        with self._queue_lock:
            self._closing = False  # a store used again after close starts a new writer

    # -- the writer thread ----------------------------------------------------------------

    def _drain(self) -> None:
        try:
            while True:
                with self._queue_lock:
                    if not self._queued and not self._closing:
                        self._queue_lock.wait(_IDLE)
                    if not self._queued:
                        return  # closing, or idle for a while (the next ``post`` starts one)
                self.flush()
        except BaseException:
            return  # kept for the next ``flush`` to raise
        finally:
            with self._queue_lock:
                if self._writer is threading.current_thread():
                    self._writer = None

    def _append(self, data: bytes) -> None:
        """Write ``data`` at the end of the file; the caller holds the write lock.

        The audit trail must never take a state write down with it: a failed append is
        dropped with one warning (not one per event while the disk stays full)."""
        if self._lost:
            data = b"\n" + data  # end whatever part of a line the failed append left
        try:
            self._follow_rotation()
            if self._fd is None:
                self.ops.makedirs(self.path.parent)
                if _ends_mid_line(self.path):
                    data = b"\n" + data  # torn by a process that died or hit a full disk
                self._fd = self.ops.open_append(self.path)
            self.ops.write(self._fd, data)
        except OSError as exc:
            if not self._lost:
                log.warning(
                    "cannot append to %s: %s; events are not logged until it works again",
                    self.path,
                    exc.strerror or exc,
                )
            self._lost += data.lstrip(b"\n").count(b"\n")
            return
        if self._lost:
            log.warning("%s: appending works again; %d events were lost", self.path, self._lost)
            self._lost = 0

    def _follow_rotation(self) -> None:
        """At most once a second: rotate the file when it is over its size (``rotate``),
        and reopen when the descriptor is no longer the file's (this process or another
        rotated it). The caller holds the write lock."""
        now = time.monotonic()
        if self._fd is None or now - self._checked < self.recheck:
            return
        self._checked = now
        held = os.fstat(self._fd)
        if self.rotate_bytes is not None and held.st_size >= self.rotate_bytes:
            try:
                rotate(self.path, self.rotate_bytes, self.ops)
            except OSError as exc:  # the log goes on in the big file; tried again later
                log.warning("cannot rotate %s: %s", self.path, exc.strerror or exc)
        try:
            current = os.stat(self.path)
        except FileNotFoundError:
            current = None
        if current is None or (current.st_ino, current.st_dev) != (held.st_ino, held.st_dev):
            fd, self._fd = self._fd, None
            self.ops.close(fd)


def _encode(events: Sequence[Event]) -> bytes:
    """The events' lines, masked; each answer kept for ``notify`` (``masked_with_json``)."""
    return b"".join(masked_with_json(e)[1] + b"\n" for e in events)


def _ends_mid_line(path: Path) -> bool:
    try:
        with path.open("rb") as handle:
            handle.seek(-1, os.SEEK_END)
            return handle.read(1) != b"\n"
    except OSError:  # absent or empty
        return False
