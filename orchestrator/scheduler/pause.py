"""Knowing that this workstation was paused, rather than that the state store failed.

A process that is stopped (SIGSTOP, Ctrl-Z, a debugger) or a machine that sleeps (a laptop's
lid) misses every deadline it keeps: its claims go unrenewed, so the deadline check would blame
the store. ``PauseWatch.look`` is asked on every pass of the scheduler's loop (each tick's
reconcile, and the lease watch between ticks) and compares three clocks since the last pass:

- **asleep**: ``CLOCK_BOOTTIME`` counts a suspend, ``CLOCK_MONOTONIC`` does not; the boot clock
  running ahead of the monotonic one is the time the machine slept;
- **stopped**: the monotonic clock ran on while the process's own CPU time hardly moved and no
  pass ran: the process was not scheduled at all (a loop blocked by work of its own uses CPU,
  and is not called paused).

Either, once it reaches ``after`` seconds, is a pause (the ``Reconciler`` says it, as a
``workstation.paused`` event, and renews the claims at once before any deadline is judged).
The clocks are taken through ``Clocks``, so the rule is tested with clocks of a test's own.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Protocol

__all__ = ["Clocks", "Pause", "PauseWatch", "SystemClocks"]

_CPU_SHARE = 0.25  # a gap with less CPU than this share of it: the process was not running


class Clocks(Protocol):
    def monotonic(self) -> float: ...  # stops while the machine sleeps

    def boot(self) -> float: ...  # runs on while the machine sleeps

    def cpu(self) -> float: ...  # this process's CPU time, all its threads


class SystemClocks:
    """This machine's clocks: ``CLOCK_BOOTTIME`` where the system has one (Linux), else the
    wall clock (which also runs on through a sleep, but may be set)."""

    def monotonic(self) -> float:
        return time.monotonic()

    def boot(self) -> float:
        boottime = getattr(time, "CLOCK_BOOTTIME", None)
        return time.clock_gettime(boottime) if boottime is not None else time.time()

    def cpu(self) -> float:
        return time.process_time()


@dataclass(frozen=True)
class Pause:
    seconds: float
    how: str  # "stopped" or "asleep"


class PauseWatch:
    def __init__(self, after: float, clocks: Clocks | None = None) -> None:
        if after <= 0:
            raise ValueError(f"PauseWatch: after must be above 0 seconds, not {after!r}")
        self.after = after
        self._clocks = clocks or SystemClocks()
        self._last: tuple[float, float, float] | None = None

    def look(self) -> Pause | None:
        """The pause since the last look, once (the next look starts from now), or None."""
        clocks = self._clocks
        now = (clocks.monotonic(), clocks.boot(), clocks.cpu())
        last, self._last = self._last, now
        if last is None:
            return None
        ran, slept_too, cpu = now[0] - last[0], now[1] - last[1], now[2] - last[2]
        asleep = slept_too - ran
        if asleep >= self.after:
            return Pause(round(asleep, 1), "asleep")
        if ran >= self.after and cpu < ran * _CPU_SHARE:
            return Pause(round(ran, 1), "stopped")
        return None
