"""How long a test waits before it calls something stuck: every test-side timeout goes
through ``patience``, so a loaded machine gets more of it, in one place.

A timeout here is a safety net, never what a test checks: each is sized so that only a hung
test reaches it on an idle machine, and it is multiplied by ``factor()``: the number in
``COUNCIL_TEST_PATIENCE`` when set (e.g. ``COUNCIL_TEST_PATIENCE=4 .venv/bin/python -m
pytest`` beside another run of the suite), otherwise the machine's measured load, the
one-minute load average per core when this module is first imported (1 on an idle machine,
at most ``MAX_MEASURED``). pytest's own per-test timeout (``timeout`` in pyproject.toml, or a
test's ``timeout`` mark) is scaled by the same factor (``tests/conftest.py``), and the factor
is put in the environment (``pin()``), so xdist's workers, the processes the tests start and
``orchestrator.testing.live_scenarios`` (its scenarios' timeouts) all use the same one."""

from __future__ import annotations

import functools
import os

__all__ = ["MAX_MEASURED", "PATIENCE_ENV", "factor", "patience", "pin"]

PATIENCE_ENV = "COUNCIL_TEST_PATIENCE"
MAX_MEASURED = 6.0


@functools.cache
def factor() -> float:
    """At least 1: ``COUNCIL_TEST_PATIENCE`` when it is a number, else the measured load."""
    raw = os.environ.get(PATIENCE_ENV, "").strip()
    if raw:
        try:
            return max(float(raw), 1.0)
        except ValueError:
            pass
    try:
        load = os.getloadavg()[0] / (os.cpu_count() or 1)
    except OSError:  # no load average on this platform
        return 1.0
    return min(max(load, 1.0), MAX_MEASURED)


def pin() -> None:
    """Put ``factor()`` in ``COUNCIL_TEST_PATIENCE`` for everything started from here on."""
    os.environ[PATIENCE_ENV] = f"{factor():g}"


def patience(seconds: float) -> float:
    """``seconds`` of safety net, scaled by ``factor()``."""
    return seconds * factor()
