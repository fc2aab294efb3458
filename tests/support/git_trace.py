"""Counting the git processes a piece of the orchestrator starts, from git's own trace2 log:
every git process, its children too (``worktree add`` runs its checkout as one), however it
was started. Counted, never timed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

__all__ = ["git_processes", "started_here", "traced"]


def traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Git's trace2 log of every process it starts from now on (``git_processes``)."""
    trace = tmp_path / "trace2.json"
    config = tmp_path / "global.gitconfig"
    config.write_text(f"[trace2]\n\teventTarget = {trace}\n")
    monkeypatch.setenv("GIT_CONFIG_GLOBAL", str(config))  # git's environment carries it
    return trace


def git_processes(trace: Path) -> list[str]:
    """The subcommand of every git process git's own trace2 log saw start (children too),
    in the order they started; none when nothing was logged."""
    return _started(trace, children=True)


def started_here(trace: Path) -> list[str]:
    """``git_processes`` without git's own children: the processes this process started."""
    return _started(trace, children=False)


def _started(trace: Path, *, children: bool) -> list[str]:
    if not trace.exists():
        return []
    started = []
    for line in trace.read_text().splitlines():
        event = json.loads(line)
        if event.get("event") != "start":
            continue
        if not children and "/" in event.get("sid", ""):
            continue  # a child's session id is its parent's, a slash, then its own
        argv, index = event["argv"], 1
        while index < len(argv) and argv[index].startswith("-"):
            index += 2 if argv[index] in ("-C", "-c") else 1
        started.append(argv[index] if index < len(argv) else "?")
    return started
