"""The live view's line of a running task says its session's services and their state (issue
50, "Visible"): a real run (the scripted CLI, real worktrees, a real ``web`` service) whose
build waits for the test's gate; while it waits, the board's line of the task says ``services:
web ready`` and so does the row the live view draws; once the attempt ended, its services are
no longer on the board (the attempt's services are stopped) but the report has them stopped."""

from __future__ import annotations

import sys
from pathlib import Path

import anyio

from orchestrator.cli.status.live_board import rows_for
from orchestrator.council import Council
from orchestrator.models import TaskStatus
from orchestrator.run.reports.report import RunReport
from orchestrator.scheduler.board import TaskLine
from tests.support.scheduler_helpers import run_config
from tests.support.timing import patience
from tests.support.worktree_helpers import git, make_repo

WEB = {
    "web": {
        "command": [sys.executable, "-m", "http.server", "3000", "--bind", "127.0.0.1"],
        "port": 3000,
    }
}


async def test_the_board_line_of_a_running_task_says_its_services(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", {"README.md": "hello\n"})
    git(repo, "config", "user.name", "Test User")
    git(repo, "config", "user.email", "test@example.com")
    gate = tmp_path / "go"
    build = f"WAIT_FOR {gate} 60\nWRITE one.txt one"
    task = {
        "id": "one",
        "prompt": "Write one.txt.",
        "metadata": {"phase_instructions": {"build": build}},
    }
    config = run_config(
        repo,
        [task],
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        sandbox="none",
        services=WEB,
    )
    reports: list[RunReport] = []
    async with Council(config) as council:

        async def run() -> None:
            reports.append(await council.run())

        async with anyio.create_task_group() as group:
            group.start_soon(run)
            try:
                line: TaskLine | None = None
                with anyio.fail_after(patience(60)):
                    while line is None or line.note != "services: web ready":
                        await anyio.sleep(0.05)
                        line = next(x for x in council.board() if x.task_id == "one")
                assert line.status == "running"
                (row,) = rows_for([line], height=40)
                assert "services: web ready" in row[-1], row
            finally:
                gate.touch()
    (report,) = reports
    done = report.task("one")
    assert done.status == TaskStatus.DONE
    assert [(s.name, s.state, s.port) for s in done.services] == [("web", "stopped", 3000)]
