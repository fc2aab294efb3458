"""The sandbox test tier: a real bubblewrap (``bwrap``) confining real fake CLIs.

A test that needs it carries ``@pytest.mark.sandbox``. Where ``bwrap`` is missing or does not
work (no user namespaces), these tests are deselected with one line saying how to run them;
with ``COUNCIL_REQUIRE_SANDBOX=1`` (CI) they are kept and fail instead.
"""

from __future__ import annotations

import functools
import os
import subprocess

import pytest

from orchestrator.sandbox import bubblewrap
from tests.support import tiers
from tests.support.timing import patience

__all__ = ["REQUIRE_ENV", "available", "deselect_missing"]

REQUIRE_ENV = "COUNCIL_REQUIRE_SANDBOX"
HOW_TO_RUN = (
    "install bubblewrap (Debian: apt-get install bubblewrap) and run "
    "COUNCIL_REQUIRE_SANDBOX=1 .venv/bin/python -m pytest -m sandbox"
)


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


@functools.cache
def available() -> bool:
    binary = bubblewrap.find()
    if binary is None:
        return False
    done = subprocess.run([binary, *bubblewrap.PROBE], capture_output=True, timeout=patience(30))
    return done.returncode == 0


def deselect_missing(config: pytest.Config, items: list[pytest.Item]) -> None:
    marked = [item for item in items if item.get_closest_marker("sandbox") is not None]
    if not marked or required() or available():
        return
    note = f"sandbox tier: {len(marked)} tests deselected (no working bwrap here); to run them: "
    tiers.deselect(config, items, marked, note + HOW_TO_RUN)
