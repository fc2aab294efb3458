"""The ledger as the spend gate holds it: every call, with running sums per budget scope, the
phase costs forecasts take their median of, and each adapter's calls in time order, kept as
calls are added, so a check costs the same with ten calls in the ledger or a hundred thousand
(``bench/ledger_bench.py``). ``budgets.spent`` says the same over a plain list, and the tests
hold the two (and the forecast's median) to a recount.

A closed call is kept whole only when an adapter's window may be asked for it (``kept``: the
gate keeps those of adapters with a quota, ``rate_limits.quotas``); any other is counted into
the running sums (a budget per day too) and forgotten, so a run's memory does not grow with its
calls (issue 33). The ledger in the store keeps every call (``Ledger.entries``). A call
forgotten so must not be ``put`` again: the gate puts each closed call once, and reads the
ledger into a new tally (``load``, ``refresh``).
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Iterable, Iterator
from datetime import datetime
from typing import Any

from orchestrator.config.budgets import Limit
from orchestrator.spend.budgets import Forecast, Scope, ScopeSpend, plural
from orchestrator.spend.ledger import LedgerEntry

__all__ = ["Tally"]

_Key = tuple[str, ...]


class Tally:
    def __init__(
        self,
        session_id: str,
        entries: Iterable[LedgerEntry] = (),
        *,
        kept: Callable[[str], bool] = lambda adapter: True,
    ) -> None:
        self.session_id = session_id
        self._kept = kept  # adapter -> its closed calls are kept whole (its window is asked)
        self.entries: dict[str, LedgerEntry] = {}  # the open calls, and the closed ones kept
        self._sums: dict[_Key, list[float]] = {}  # scope key -> [usd, tokens]
        self._costs: dict[tuple[str, str], list[float]] = {}  # (adapter, phase) -> sorted
        self._tokens: dict[tuple[str, str], list[float]] = {}
        self._closed: dict[tuple[str, str], int] = {}
        self._times: dict[str, list[tuple[datetime, str]]] = {}  # adapter -> (start, call)
        self._total: dict[str, list[float]] = {}  # adapter -> [calls, usd, tokens]
        self._cut: dict[str, list[Any]] = {}  # adapter -> [moment, calls, usd, tokens]
        self.calls = 0  # this run's calls
        self.unpriced = 0  # of them, closed with no price
        self.tasks: dict[str, None] = {}  # the tasks this run's calls count to, in order
        for entry in entries:
            self.put(entry)

    def put(self, entry: LedgerEntry) -> None:
        """Add ``entry``, or replace the record of its call (closed, read again)."""
        old = self.entries.get(entry.call)
        kept = self._kept(entry.adapter)
        if old is not None:
            self._count(old, -1)
            self._adapter(old, -1, call=False)
        elif kept:
            times = self._times.setdefault(entry.adapter, [])
            place = (entry.started_at, entry.call)
            if times and place < times[-1]:
                bisect.insort(times, place)
            else:
                times.append(place)
        self._count(entry, 1)
        self._adapter(entry, 1, call=old is None)
        if kept or entry.open:
            self.entries[entry.call] = entry
        elif old is not None:
            del self.entries[entry.call]  # counted: the ledger in the store keeps it

    def drop(self, call: str) -> None:
        old = self.entries.pop(call, None)
        if old is not None:
            self._count(old, -1)
            self._adapter(old, -1, call=True)
            times = self._times.get(old.adapter)
            if times is not None:
                times.pop(bisect.bisect_left(times, (old.started_at, old.call)))

    # -- an adapter's window (``rate_limits.quotas``) ---------------------------------------
    # ``_cut[adapter]``: the calls started at or before a moment (the last window's start):
    # how many, and their sums. Windows only move forward with the clock, so a window's sums
    # are the adapter's totals less what was cut, brought up to date call by call.

    def _adapter(self, entry: LedgerEntry, sign: int, *, call: bool) -> None:
        """``entry`` counted in (``sign`` 1) or out of its adapter's totals and cut; ``call``:
        as a call too, not only its figures (added or dropped, not replaced)."""
        usd, tokens = sign * entry.counted_usd, sign * entry.counted_tokens
        total = self._total.setdefault(entry.adapter, [0, 0.0, 0.0])
        total[0] += sign if call else 0
        total[1] += usd
        total[2] += tokens
        cut = self._cut.get(entry.adapter)
        if cut is not None and entry.started_at <= cut[0]:
            cut[1] += sign if call else 0
            cut[2] += usd
            cut[3] += tokens

    def window(self, adapter: str, since: datetime) -> tuple[float, float, int]:
        """The dollars, tokens and calls of ``adapter``'s calls started after ``since`` (an
        adapter whose calls are ``kept``)."""
        times = self._times.get(adapter, [])
        cut = self._cut.get(adapter)
        if cut is None or since < cut[0]:
            cut = [since, 0, 0.0, 0.0]
        else:
            cut[0] = since
        while cut[1] < len(times) and times[cut[1]][0] <= since:
            entry = self.entries[times[cut[1]][1]]
            cut[1] += 1
            cut[2] += entry.counted_usd
            cut[3] += entry.counted_tokens
        self._cut[adapter] = cut
        total = self._total.get(adapter, [0, 0.0, 0.0])
        return total[1] - cut[2], total[2] - cut[3], int(total[0] - cut[1])

    def _keys(self, entry: LedgerEntry) -> Iterator[_Key]:
        day = entry.started_at.date().isoformat()
        if entry.session_id == self.session_id:
            yield ("run",)
            yield ("task", entry.task)
            yield ("adapter", entry.adapter)
            yield ("run-day", day)
            yield ("task-day", entry.task, day)
        yield ("adapter-day", entry.adapter, day)

    def _count(self, entry: LedgerEntry, sign: int) -> None:
        for key in self._keys(entry):
            sums = self._sums.setdefault(key, [0.0, 0.0])
            sums[0] += sign * entry.counted_usd
            sums[1] += sign * entry.counted_tokens
        if entry.session_id == self.session_id:
            self.calls += sign
            self.unpriced += sign * (not entry.open and not entry.priced)
            if entry.task not in self.tasks:
                self.tasks[entry.task] = None
        if entry.open:
            return
        pair = (entry.adapter, entry.phase)
        self._closed[pair] = self._closed.get(pair, 0) + sign
        _sorted(self._tokens.setdefault(pair, []), entry.tokens, sign)
        if entry.cost_usd is not None:
            _sorted(self._costs.setdefault(pair, []), entry.cost_usd, sign)

    def spent(self, scope: Scope, now: datetime) -> ScopeSpend:
        if scope.limit.per == "day":
            # Today's calls: an adapter's of every run (its account's), else this run's.
            day = now.date().isoformat()
            if scope.kind == "run":
                key: _Key = ("run-day", day)
            else:
                key = (f"{scope.kind}-day", scope.name, day)
        else:
            key = ("run",) if scope.kind == "run" else (scope.kind, scope.name)
        usd, tokens = self._sums.get(key, (0.0, 0.0))
        return ScopeSpend(scope, max(usd, 0.0), round(tokens))

    def run_total(self) -> tuple[float, int]:
        """This run's spend: dollars and tokens."""
        usd, tokens = self._sums.get(("run",), (0.0, 0.0))
        return max(usd, 0.0), round(tokens)

    def forecast(self, adapter: str, phase: str, estimate: Limit | None) -> Forecast:
        pair = (adapter, phase)
        done = self._closed.get(pair, 0)
        if done:
            costs = self._costs.get(pair) or []
            return Forecast(
                usd=_median(costs) if costs else 0.0,
                tokens=int(_median(self._tokens[pair])),
                basis=f"median of {done} {plural(phase, done)} on {adapter}",
            )
        if estimate is not None:
            return Forecast(estimate.usd or 0.0, estimate.tokens or 0, "budgets.estimate")
        return Forecast()

    def since(self, adapter: str, moment: datetime) -> list[LedgerEntry]:
        """``adapter``'s calls started after ``moment``, oldest first (an adapter whose calls
        are ``kept``)."""
        times = self._times.get(adapter, [])
        start = bisect.bisect_right(times, (moment, "\uffff"))
        return [self.entries[call] for _, call in times[start:]]


def _median(ordered: list[float]) -> float:
    """The median of a list already in order (``statistics.median`` would sort it again)."""
    middle = len(ordered) // 2
    if len(ordered) % 2:
        return ordered[middle]
    return (ordered[middle - 1] + ordered[middle]) / 2


def _sorted(values: list[float], value: float, sign: int) -> None:
    if sign > 0:
        bisect.insort(values, value)
    else:
        values.pop(bisect.bisect_left(values, value))
