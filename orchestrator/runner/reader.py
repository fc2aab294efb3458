"""Reading a running CLI: pipe bytes -> lines -> redaction -> log -> parser -> events.

The runner owns both pipes (made with ``os.pipe`` and enlarged to 1 MiB), so it reads them with
plain non-blocking ``os.read`` calls of up to 1 MiB and only waits on the event loop when a
pipe is empty: about eight times the throughput of stream objects reading 64 KiB at a time.
After every chunk the pump yields once, so a CLI flooding its output cannot starve the other
sessions on the loop.

For each line: decode (invalid UTF-8 becomes U+FFFD), redact secrets, mask the secrets written
over several lines (``safety.secret_lines``: the lines of one read are masked as one text, and
the last ones held back only while their end could be the start of a known secret the next
line completes; all of them released at the end of the stream), write it to the log, hand it
to ``adapter.parse_line``, mask the events it returns once more (``secret_mask.deep``: a parser
decodes JSON escapes, which can spell a secret, or its line breaks, the line did not show as
such), keep them in a bounded
``EventTail`` and pass each to ``on_event``. A parser that raises (breaking the adapter
contract) does not stop the run: the line becomes a ``raw`` event carrying the error, and the
failure is logged once. ``on_event`` is treated like a plugin observer: an exception there is
logged (once per run) and ignored, so a broken live display never costs a CLI run.

The first event the adapter says settles the run (``Adapter.ends_run``: an auth error, or a
rate limit of a CLI whose own retries cannot be capped) is kept as ``settled`` and handed to
``on_settled``, which stops the CLI; reading goes on until its output ends.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable

import anyio
import anyio.lowlevel

from orchestrator.adapter import Adapter, AgentEvent, EventKind, Stream
from orchestrator.process.output import LINE_CAP, LineSplitter, LogSink, TextTail
from orchestrator.runner.event_tail import EventTail
from orchestrator.safety import secret_mask
from orchestrator.safety.redaction import Redactor
from orchestrator.safety.secret_lines import LineHold

__all__ = ["READ_SIZE", "EventCallback", "OutputReader"]

log = logging.getLogger(__name__)

READ_SIZE = 1024 * 1024
EventCallback = Callable[[AgentEvent], None]


class OutputReader:
    def __init__(
        self,
        adapter: Adapter,
        redact: Redactor,
        sink: LogSink,
        on_event: EventCallback | None = None,
        *,
        on_settled: EventCallback | None = None,
        streams: int = 2,
        line_cap: int = LINE_CAP,
    ) -> None:
        self.adapter = adapter
        self.redact = redact
        self.sink = sink
        self.on_event = on_event
        self.on_settled = on_settled
        self.settled: AgentEvent | None = None  # the event that settled the run, if one did
        self.line_cap = line_cap
        self.tail = EventTail()
        self.stderr = TextTail()
        self.lines = 0
        self.truncated_lines = 0
        self.last_output = time.monotonic()
        self.finished = anyio.Event()  # set when every stream reached end of file
        self._open = streams
        self._parser_failed = False
        self._callback_failed = False
        self._ends_failed = False

    async def pump(self, fd: int, stream: Stream) -> None:
        """Read ``fd`` (non-blocking) to end of file, handling each line as it completes."""
        splitter = LineSplitter(self.line_cap)
        hold: LineHold[tuple[int, int]] = LineHold(secret_mask.needles)
        try:
            while True:
                try:
                    chunk = os.read(fd, READ_SIZE)
                except BlockingIOError:
                    await anyio.wait_readable(fd)
                    continue
                if not chunk:
                    break
                self.last_output = time.monotonic()
                lines = [self._text(line, dropped) for line, dropped in splitter.feed(chunk)]
                for text, (dropped, size) in hold.feed(lines):
                    self._line(text, dropped, size, stream)
                await anyio.lowlevel.checkpoint()
            rest = splitter.finish()
            last = [self._text(*rest)] if rest is not None else []
            for text, (dropped, size) in [*hold.feed(last), *hold.finish()]:
                self._line(text, dropped, size, stream)
        finally:
            if hold.held:  # cut short (cancelled): what was held is still logged, masked
                for text, (dropped, _size) in hold.finish():
                    self.sink.line(stream, text, dropped)
            self._open -= 1
            if self._open == 0:
                self.finished.set()

    def _text(self, raw: bytes, dropped: int) -> tuple[str, tuple[int, int]]:
        """A line as text, masked on its own; with its dropped bytes and its size."""
        text = raw.decode("utf-8", "replace")
        if text.endswith("\r"):
            text = text[:-1]
        if self.redact:
            text = self.redact(text)
            if dropped:
                text = self.redact.cut_partial(text)
        return text, (dropped, len(raw))

    def _line(self, text: str, dropped: int, size: int, stream: Stream) -> None:
        self.lines += 1
        if dropped:
            self.truncated_lines += 1
        self.sink.line(stream, text, dropped)
        if stream == "stderr":
            self.stderr.add(text)
        try:
            events = self.adapter.parse_line(text, stream)
        except Exception as exc:
            events = [self._parser_error(text, exc)]
        events = [self._scrub(event) for event in events]
        if any(e.usage is not None and e.kind != EventKind.RUNNING_USAGE for e in events):
            self.sink.flush()  # its final figure, on disk before anything may kill us
        for event in events:
            self.tail.add(event, size)
            if self.settled is None and self._ends(event):
                self.settled = event
                if self.on_settled is not None:
                    self.on_settled(event)
            if self.on_event is not None:
                try:
                    self.on_event(event)
                except Exception:
                    if not self._callback_failed:
                        self._callback_failed = True
                        log.exception("on_event callback raised; ignored for the rest of the run")

    def _ends(self, event: AgentEvent) -> bool:
        try:
            return self.adapter.ends_run(event)
        except Exception:
            if not self._ends_failed:  # a plugin's bug must not cost the run: let it go on
                self._ends_failed = True
                log.exception("adapter %r: ends_run raised; ignored", self.adapter.name)
            return False

    def _scrub(self, event: AgentEvent) -> AgentEvent:
        redact = self.redact
        text = secret_mask.hidden(redact(event.text) if redact else event.text)
        tool = secret_mask.hidden(redact(event.tool)) if event.tool else event.tool
        data = secret_mask.deep(redact.deep(event.data) if redact else event.data)
        if text is event.text and tool is event.tool and data is event.data:
            return event
        return event.model_copy(update={"text": text, "tool": tool, "data": data})

    def _parser_error(self, text: str, exc: Exception) -> AgentEvent:
        if not self._parser_failed:
            self._parser_failed = True
            log.error(
                "adapter %r: parse_line raised %s (the adapter contract says it never raises); "
                "lines it fails on are kept as raw events",
                self.adapter.name,
                type(exc).__name__,
                exc_info=exc,
            )
        return AgentEvent(
            kind=EventKind.RAW,
            text=text[:4096],
            data={"parse_error": f"{type(exc).__name__}: {exc}"[:500]},
        )
