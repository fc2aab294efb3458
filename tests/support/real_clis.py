"""The real-CLI test tier's switch: which real CLIs are installed, and what happens to the
tests that need one that is not.

A test that drives a real CLI carries ``@pytest.mark.real_cli("NAME")``. The binary is looked
for in ``$COUNCIL_CLIS_DIR/bin``, ``./.clis/bin`` (where ``.ci/install-clis`` installs the
pinned releases), then ``PATH``. When it is missing, the test is deselected (not skipped, so
it is never counted as passing) and the run ends with one line saying how to run the tier;
with ``COUNCIL_REQUIRE_REAL_CLIS=1`` (CI) it is kept and fails instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from orchestrator.testing.live_targets import find_cli
from tests.support import tiers

__all__ = [
    "CLIS",
    "HOW_TO_RUN",
    "REQUIRE_ENV",
    "binary_for",
    "deselect_missing",
]

CLIS = ("claude", "codex", "gemini", "qwen", "opencode", "aider")
REQUIRE_ENV = "COUNCIL_REQUIRE_REAL_CLIS"
HOW_TO_RUN = (
    "bash .ci/install-clis && COUNCIL_REQUIRE_REAL_CLIS=1 .venv/bin/python -m pytest tests/real_cli"
)


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def wanted(item: pytest.Item) -> list[str]:
    """The CLIs an item's ``real_cli`` markers name."""
    return [str(arg) for mark in item.iter_markers("real_cli") for arg in mark.args]


def deselect_missing(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the items whose CLI is not installed, unless the tier is required."""
    if required():
        return
    missing: dict[str, bool] = {}
    dropped = []
    for item in items:
        names = wanted(item)
        for name in names:
            if name not in missing:
                missing[name] = find_cli(name) is None
        if any(missing[name] for name in names):
            dropped.append(item)
    absent = ", ".join(sorted(name for name, gone in missing.items() if gone))
    note = f"real-CLI tier: {len(dropped)} tests deselected ({absent} not installed); "
    tiers.deselect(config, items, dropped, f"{note}run it with: {HOW_TO_RUN}")


def binary_for(item: pytest.Item) -> Path:
    """The installed binary of the item's CLI; a missing one fails the test (the tier is
    required, or the test was not deselected because it was run some other way)."""
    names = wanted(item)
    if len(names) != 1:
        raise pytest.UsageError(f"{item.nodeid}: mark it with exactly one real_cli(NAME)")
    binary = find_cli(names[0])
    if binary is None:
        pytest.fail(f"{names[0]} is not installed; install the pinned CLIs with: {HOW_TO_RUN}")
    return binary
