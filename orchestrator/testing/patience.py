"""How long a test waits before it calls something stuck: a safety net sized for an idle
machine, times ``factor()``, so that a loaded machine gets more of it, in one place (the
project's tests through ``tests/support/timing.py``, and ``live_scenarios``).

``factor()`` is ``COUNCIL_TEST_PATIENCE`` when it is set to a number (at least 1), else the
machine's load per core as measured now: the larger of the one-minute load average and the
processes runnable at this moment (``/proc/loadavg``; the average lags a load that has just
begun by a minute), at least 1 and at most ``MAX_MEASURED``. It never goes down within a
process: a safety net sized for the busiest moment seen stays that size.
"""

from __future__ import annotations

import os

__all__ = ["MAX_MEASURED", "PATIENCE_ENV", "factor", "patience"]

PATIENCE_ENV = "COUNCIL_TEST_PATIENCE"
MAX_MEASURED = 6.0
_LOADAVG = "/proc/loadavg"

_highest = [1.0]  # the largest measured factor so far, in this process


def factor() -> float:
    """At least 1: ``COUNCIL_TEST_PATIENCE`` when it is a number, else the measured load."""
    raw = os.environ.get(PATIENCE_ENV, "").strip()
    if raw:
        try:
            return max(float(raw), 1.0)
        except ValueError:
            pass
    measured = min(max(_load_per_core(), 1.0), MAX_MEASURED)
    _highest[0] = max(_highest[0], measured)
    return _highest[0]


def patience(seconds: float) -> float:
    """``seconds`` of safety net, scaled by ``factor()``."""
    return seconds * factor()


def _load_per_core() -> float:
    try:
        average = os.getloadavg()[0]
    except OSError:  # no load average on this platform
        return 1.0
    return max(average, _runnable_now()) / (os.cpu_count() or 1)


def _runnable_now() -> float:
    """The processes runnable at this moment but this one (Linux: the fourth field of
    ``/proc/loadavg``, ``runnable/total``); 0 where it cannot be read."""
    try:
        with open(_LOADAVG, encoding="ascii") as source:
            fields = source.read().split()
        return max(int(fields[3].split("/")[0]) - 1, 0)
    except (OSError, IndexError, ValueError):
        return 0.0
