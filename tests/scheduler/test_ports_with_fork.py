"""A session's block of ports claimed in the worker-thread call that forks its new worktree
(issue 51: ``AttemptPart.with_fork``), not in a call of its own at the first phase: the CLI and
its checks still get it, it is let go at the attempt's end, and a kept worktree (no fork) still
claims its block at the phase's start."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from orchestrator.config.task import TaskConfig
from orchestrator.council import Council
from orchestrator.scheduler import session_ports
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.session_ports import SessionPortsPart
from orchestrator.services import ports
from tests.support.hops import count_hops
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config

HAS_BLOCK = "import os, sys; sys.exit(0 if os.environ.get('COUNCIL_PORTS') else 'no block')"


@pytest.fixture
def ports_here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The blocks' lock files in this test's own directory."""
    directory = tmp_path / "ports"
    real = ports.claim
    monkeypatch.setattr(session_ports, "claim", lambda key: real(key, directory))
    return directory


async def test_the_block_rides_the_worktrees_fork_call(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, ports_here: Path
) -> None:
    repo = new_repo(tmp_path)
    task = {
        "id": "t1",
        "prompt": "Work on a.py.",
        "files": ["a.py"],
        "phases": ["build"],
        "verify": [[sys.executable, "-c", HAS_BLOCK]],
        "metadata": {"phase_instructions": {"build": "WRITE a.py A = 1"}},
    }
    config = run_config(
        repo, [task], adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}}
    )
    hopped = count_hops(monkeypatch)
    async with Council(config) as council:
        report = await council.run()
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert merged_tasks(repo) == ["t1"]  # its check saw COUNCIL_PORTS
    names = [getattr(fn, "__qualname__", repr(fn)) for fn in hopped]
    assert "_claimed" not in names, names  # no hop of its own
    # Let go at the attempt's end: every block can be claimed again.
    again = ports.claim("t1-again", ports_here)
    assert again is not None
    again.close()


async def test_a_fork_claim_is_let_go_without_a_phase(ports_here: Path) -> None:
    part = SessionPortsPart()
    attempt = Attempt(TaskConfig(id="t1", prompt="p"), "alpha", "build", 1, frozenset())
    work = part.with_fork(attempt, "s-1")
    assert work is not None
    work()
    assert part.with_fork(attempt, "s-1") is None  # claimed once per attempt
    side = await part.phase_starting(attempt, "build")  # the forked block, no claim of its own
    assert side is not None
    first = side.env["COUNCIL_PORT"]
    await part.ended(attempt)
    assert not part.blocks
    again = ports.claim("s-1", ports_here)  # its block is free again: the same one
    assert again is not None
    try:
        assert str(again.first) == first
    finally:
        again.close()


async def test_an_unstarted_attempts_fork_claim_is_let_go(ports_here: Path) -> None:
    part = SessionPortsPart()
    attempt = Attempt(TaskConfig(id="t1", prompt="p"), "alpha", "build", 1, frozenset())
    work = part.with_fork(attempt, "s-2")
    assert work is not None
    work()
    other = ports.claim("s-2", ports_here)  # held by the attempt: another block is given
    assert other is not None
    other.close()
    await part.ended(attempt)  # never reached a phase: its block goes all the same
    again = ports.claim("s-2", ports_here)
    assert again is not None
    try:
        assert again.first != other.first  # the attempt's own block, free again
    finally:
        again.close()
