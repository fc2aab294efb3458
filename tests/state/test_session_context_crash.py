"""A session context left by an orchestrator that died: never named in a prompt (its writer is
dead), and removed by the next run's sweep of the claim that lapsed with it."""

from __future__ import annotations

import signal
from pathlib import Path

import anyio

from orchestrator.council import Council
from orchestrator.state import FileStateStore
from orchestrator.state.context import BusyFile, ContextManager, SessionContext
from orchestrator.workflow.handoffs.busy_files import HEADING
from tests.support.cli_process_helpers import reap, scripted_clis, wait_gone
from tests.support.council_process import CONFIG, start, task
from tests.support.scheduler_helpers import new_repo, run_config
from tests.support.timing import patience
from tests.support.workflow_helpers import logged_prompts

LEASE = 1.5  # seconds: the killed run's claim lapses this long after its last renewal


async def contexts_of(repo: Path) -> list[SessionContext]:
    async with FileStateStore.for_repo(repo) as store:
        return await ContextManager(store, repo).all_contexts()


async def busy_in(repo: Path) -> list[BusyFile]:
    async with FileStateStore.for_repo(repo) as store:
        return await ContextManager(store, repo).busy_files()


async def test_a_killed_runs_context_is_not_named_and_goes_with_its_swept_claim(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    text = CONFIG.replace("stale_threshold: 10m", f"stale_threshold: {LEASE}")
    config = tmp_path / "run.yaml"
    never = tmp_path / "never"
    stuck = task("stuck", f"WAIT_FOR {never} 30\nWRITE stuck.txt x")
    config.write_text(text.format(repo=repo, phases="{name: build}") + stuck)
    process = start("run", config)
    try:
        with anyio.fail_after(patience(60)):
            while not [c for c in await contexts_of(repo) if c.task == "stuck"]:
                await anyio.sleep(0.05)
        process.send_signal(signal.SIGKILL)  # no finally runs: its context is left behind
        process.communicate(timeout=patience(30))  # its pipes closed, not left to the collector
    finally:
        reap(process)
    (left,) = await contexts_of(repo)
    assert left.files_locked == ["stuck.txt"] and left.writer is not None
    assert left.writer["pid"] == process.pid
    assert await busy_in(repo) == []  # its writer is dead: nobody is told about stuck.txt

    await anyio.sleep(LEASE + 0.5)
    later = {
        "id": "later",
        "prompt": "Work.",
        "files": ["later.txt"],
        "metadata": {"phase_instructions": {"build": "WRITE later.txt y"}},
    }
    async with Council(run_config(repo, [later])) as council:
        report = await council.run()
    assert report.exit_code == 0, report.model_dump_json(indent=2)
    assert await contexts_of(repo) == []  # swept with the lapsed claim
    (prompt,) = logged_prompts(repo / ".council" / "logs", "later", "build")
    assert HEADING not in prompt and "stuck.txt" not in prompt
    assert wait_gone(scripted_clis(repo)) == []  # the dead run's CLI was stopped too
