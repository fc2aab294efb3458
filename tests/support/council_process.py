"""``council`` as a real process, for tests that run, kill, starve and resume it.

A run config for the ``scripted`` adapter whose tasks say what each phase's CLI does
(scripted-cli lines: ``WRITE f.txt text``, ``SLEEP 2``, ``RATE_LIMIT reset=60``...), the
command line, and what can be seen from outside while it runs: the event log and the
state records (read without the store's locks, so this works while the run holds them).
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from orchestrator.state.file.record_files.codec import decode
from tests.support.cli_process_helpers import COUNCIL, ENV, events, seen, wait_for
from tests.support.timing import patience

__all__ = [
    "COUNCIL",
    "ENV",
    "council",
    "events",
    "seen",
    "start",
    "task",
    "task_record",
    "wait_for",
    "write_config",
]

# stale_threshold is far longer than any test may take: a resume that had to wait for a dead
# orchestrator's leases or locks to lapse would time out instead of finishing.
CONFIG = """\
repo: {repo}
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: 3}}
workflow: {{phases: [{phases}]}}
retry: {{max_retries: 2, backoff_initial: 0.05, backoff_max: 0.2}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}}
tasks:
"""


def task(task_id: str, build: str, *, after: str | None = None) -> str:
    """One task: plan declares its file, build does ``build`` (scripted-cli lines)."""
    instructions = {"plan": f"SAY FILES: {task_id}.txt", "build": build}
    entry: dict[str, Any] = {
        "id": task_id,
        "prompt": f"Write {task_id}.txt.",
        "files": [f"{task_id}.txt"],
        "metadata": {"phase_instructions": instructions},
    }
    if after is not None:
        entry["depends_on"] = [after]
    return f"  - {json.dumps(entry)}\n"


def write_config(
    directory: Path, repo: Path, tasks: str, phases: Sequence[str] = ("plan", "build")
) -> Path:
    config = directory / "run.yaml"
    listed = ", ".join(f"{{name: {name}}}" for name in phases)
    config.write_text(CONFIG.format(repo=repo, phases=listed) + tasks)
    return config


def start(command: str, config: Path, *extra: str) -> subprocess.Popen[str]:
    """``council <command> <config> --json`` in the background (output kept for the end)."""
    return subprocess.Popen(
        [*COUNCIL, command, str(config), "--json", *extra],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
    )


def council(
    args: Sequence[str], cwd: Path, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env or ENV,
        timeout=patience(timeout),
    )


def task_record(repo: Path, task_id: str) -> dict[str, Any] | None:
    """The task's current record as it is on disk, None while it has none."""
    current = repo / ".council" / "state" / "tasks" / task_id / "current.json"
    try:
        data: dict[str, Any] = json.loads(decode(current.read_bytes()))
    except (OSError, ValueError):
        return None
    return data


def paused(pid: int) -> bool:
    """Process ``pid`` is paused (SIGSTOP: state ``T`` in ``/proc/<pid>/stat``)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "T"
