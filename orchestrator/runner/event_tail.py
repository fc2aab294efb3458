"""The events of one run that stay in memory: enough to classify it, bounded whatever it prints.

``on_event`` callbacks see every event as it arrives; what is *kept* for ``classify`` and the
``CliRun`` is:

- significant events (``started``, ``completed``, ``error``, ``rate_limited``): the most recent
  ``significant`` of them, plus the first one that named the CLI's session;
- other events (messages, tool calls, raw lines): the most recent ``ordinary`` of them;
- within a budget of source-line bytes for each group, so a flood of huge lines cannot hold
  gigabytes through the events parsed from it.

An event parsed from a line longer than ``slim_above`` bytes is kept slimmed (text cut to 4 KiB,
``data`` dropped); only the latest ``completed`` event keeps its full text (the final answer,
which later phases read). Usage carried by events that were let go is summed into one
``usage`` event at the front, so the run's totals stay right (a ``running_usage`` event's is
never summed: the outcome's usage leaves those out).
"""

from __future__ import annotations

import heapq
from collections import deque
from typing import NamedTuple

from orchestrator.adapter import AgentEvent, EventKind, Usage

__all__ = ["EventTail"]

SIGNIFICANT = frozenset(
    {
        EventKind.STARTED,
        EventKind.COMPLETED,
        EventKind.ERROR,
        EventKind.RATE_LIMITED,
        EventKind.QUOTA,
    }
)
_SLIM_TEXT = 4096


class _Kept(NamedTuple):
    seq: int
    size: int  # bytes of the line the event came from
    event: AgentEvent


class _Group:
    __slots__ = ("budget", "items", "limit", "size")

    def __init__(self, limit: int, budget: int) -> None:
        self.items: deque[_Kept] = deque()
        self.limit = limit
        self.budget = budget
        self.size = 0


class EventTail:
    def __init__(
        self,
        *,
        significant: int = 200,
        ordinary: int = 500,
        budget: int = 2 * 1024 * 1024,
        slim_above: int = 16 * 1024,
    ) -> None:
        self._significant = _Group(significant, budget)
        self._ordinary = _Group(ordinary, budget)
        self._slim_above = slim_above
        self._seq = 0
        self._final: _Kept | None = None  # the latest completed event, in full
        self._first_session: _Kept | None = None
        self._dropped_usage: list[Usage] = []
        self.dropped = 0

    def add(self, event: AgentEvent, line_bytes: int) -> None:
        self._seq += 1
        kept = event
        if line_bytes > self._slim_above:
            kept = _slim(event)
            line_bytes = len(kept.text)
        if event.kind is EventKind.COMPLETED:
            self._final = _Kept(self._seq, 0, event)
        if event.native_session_id and self._first_session is None:
            self._first_session = _Kept(self._seq, 0, _slim(event))
        group = self._significant if event.kind in SIGNIFICANT else self._ordinary
        group.items.append(_Kept(self._seq, line_bytes, kept))
        group.size += line_bytes
        while len(group.items) > group.limit or (
            group.size > group.budget and len(group.items) > 1
        ):
            gone = group.items.popleft()
            group.size -= gone.size
            self.dropped += 1
            if gone.event.usage is not None and gone.event.kind != EventKind.RUNNING_USAGE:
                self._dropped_usage.append(gone.event.usage)
        if len(self._dropped_usage) > 64:
            self._dropped_usage = [_sum(self._dropped_usage)]

    def events(self) -> list[AgentEvent]:
        merged = heapq.merge(self._significant.items, self._ordinary.items)
        final = self._final
        events = [final.event if final and kept.seq == final.seq else kept.event for kept in merged]
        first = self._first_session
        if (
            first is not None
            and not _holds(self._significant, first.seq)
            and not _holds(self._ordinary, first.seq)
        ):
            # Let go of, but it names the session; its usage is already in the sum below.
            events.insert(0, first.event.model_copy(update={"usage": None}))
        if self._dropped_usage:
            events.insert(
                0,
                AgentEvent(
                    kind=EventKind.USAGE,
                    text=f"usage of {self.dropped} events no longer held in memory",
                    usage=_sum(self._dropped_usage),
                ),
            )
        return events


def _holds(group: _Group, seq: int) -> bool:
    return (
        bool(group.items)
        and group.items[0].seq <= seq
        and any(kept.seq == seq for kept in group.items)
    )


def _slim(event: AgentEvent) -> AgentEvent:
    if len(event.text) <= _SLIM_TEXT and not event.data:
        return event
    text = event.text if len(event.text) <= _SLIM_TEXT else event.text[:_SLIM_TEXT] + "…"
    return event.model_copy(update={"text": text, "data": {"slimmed": True}})


def _sum(usages: list[Usage]) -> Usage:
    costs = [u.cost_usd for u in usages if u.cost_usd is not None]
    return Usage(
        input_tokens=sum(u.input_tokens for u in usages),
        output_tokens=sum(u.output_tokens for u in usages),
        cache_read_tokens=sum(u.cache_read_tokens for u in usages),
        cache_write_tokens=sum(u.cache_write_tokens for u in usages),
        cost_usd=sum(costs) if costs else None,
    )
