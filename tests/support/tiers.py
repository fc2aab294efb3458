"""The test tiers that need a real part of the machine (the real CLIs, a PostgreSQL server,
bubblewrap): each deselects its tests where its part is missing, with one line saying how to
run them, printed at the end of the run (``report_deselected``)."""

from __future__ import annotations

import pytest

__all__ = ["deselect", "report_deselected"]

_NOTES = pytest.StashKey[list[str]]()


def deselect(
    config: pytest.Config, items: list[pytest.Item], dropped: list[pytest.Item], note: str
) -> None:
    """Take ``dropped`` out of ``items`` as deselected (never skipped: not counted as run),
    and keep ``note`` for the end of the run."""
    if not dropped:
        return
    config.hook.pytest_deselected(items=dropped)
    items[:] = [item for item in items if item not in dropped]
    config.stash.setdefault(_NOTES, []).append(note)


def report_deselected(config: pytest.Config, reporter: pytest.TerminalReporter) -> None:
    for note in config.stash.get(_NOTES, []):
        reporter.write_line(note, yellow=True)
