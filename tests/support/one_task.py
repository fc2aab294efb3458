"""A run config of one task on the scripted CLI, a single build that writes ``<task>.txt``,
for tests of what commands say and act on (not of the work itself)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["write"]

SCRIPTED = {"type": "scripted", "options": {"delay": 0}}


def write(path: Path, repo: Path, task: str, **sections: Any) -> Path:
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
                "metadata": {"phase_instructions": {"build": f"WRITE {task}.txt {task}"}},
            }
        ],
    }
    path.write_text(json.dumps(data))
    return path
