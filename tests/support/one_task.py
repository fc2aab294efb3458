"""A run config of one task on the scripted CLI, a single build that writes ``<task>.txt``,
for tests of what commands say and act on (not of the work itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write"]

SCRIPTED = {"type": "scripted", "options": {"delay": 0}}


def write(path: Path, repo: Path, task: str, **sections: Any) -> Path:
    """``task`` in a config at ``path``; with ``budgets``, its build streams its usage a step
    a second before it writes, so a spent budget stops it while it runs (a build that says
    its usage at its end only may finish before the meter's stop reaches it, under load)."""
    build = f"WRITE {task}.txt {task}"
    if "budgets" in sections:
        build = f"SPEND 0 50 times=4 every=1\n{build}"
    data: dict[str, Any] = {
        "repo": str(repo),
        "adapters": {"cli": SCRIPTED},
        "default_adapter": "cli",
        "workflow": {"phases": [{"name": "build"}]},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "10m"},
        **sections,
        "tasks": [
            {
                "id": task,
                "prompt": f"Write {task}.txt.",
                "metadata": {"phase_instructions": {"build": build}},
            }
        ],
    }
    path.write_text(json.dumps(data))
    return path
