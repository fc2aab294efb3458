"""Under a sandbox the kernel keeps a CLI from writing the repository's own checkout, so the
tamper guard does not read the checkout's status around that CLI (a git process before and
after each phase); a run whose sandbox opens any of the checkout again for writing, or runs
without one, is watched as before."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from orchestrator.runner.phase import checkout_confined
from orchestrator.runner.phase_call import PhaseCall
from tests.support.scheduler_helpers import new_repo, run_config

TASKS = [{"id": "t1", "prompt": "p"}]


def call(repo: Path, *, reach: bool = True) -> PhaseCall:
    async def no_reach() -> Any:
        raise AssertionError("not asked")

    return PhaseCall(
        task_id="t1",
        phase="build",
        adapter="alpha",
        prompt="p",
        workdir=repo,
        home_root=repo.parent / "homes",
        session_id="s1",
        reach=no_reach if reach else None,
    )


async def test_a_cli_outside_every_sandbox_is_watched(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    assert not await checkout_confined(run_config(repo, TASKS, sandbox="none"), call(repo))
    # a call outside a session's worktree is never taken for confined
    assert not await checkout_confined(run_config(repo, TASKS), call(repo, reach=False))


@pytest.mark.sandbox
async def test_only_a_sandbox_that_keeps_the_checkout_read_only_is_confined(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    elsewhere = tmp_path / "cache"
    sandboxed = {"mode": "bubblewrap"}
    confined = run_config(repo, TASKS, sandbox={**sandboxed, "write": [str(elsewhere)]})
    assert await checkout_confined(confined, call(repo))
    for opened in (repo / "build", repo, tmp_path):  # in it, it, above it
        config = run_config(repo, TASKS, sandbox={**sandboxed, "write": [str(opened)]})
        assert not await checkout_confined(config, call(repo)), opened
