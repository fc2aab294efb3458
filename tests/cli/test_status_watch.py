"""``council status --watch`` as a process of its own, following writes another process makes
to the run's store: each write the watcher hears (``StateStore.watch``) is a redraw, piped as
one line per task status change; it ends with the report once the session's record says the
run ended (every task ended is not enough: the run writes its session last).

On the file backend the writer is the test process itself, standing for the orchestrator:
its pid is the session's recorded orchestrator, alive all along, so only the writes move the
watcher on. On PostgreSQL a real team run is followed from another process.
"""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import anyio
import anyio.to_thread
import pytest

from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.process import procid
from orchestrator.scheduler.context import ORCHESTRATOR
from orchestrator.state import FileStateStore
from orchestrator.state.changes import RecordRef
from tests.support.cli_process_helpers import COUNCIL, reap, spawn
from tests.support.team_helpers import Team, team_task, wait_for
from tests.support.timing import patience


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()

    async def start() -> None:
        async with FileStateStore.for_repo(repo) as store:
            metadata = {ORCHESTRATOR: procid.current().as_dict()}
            await store.create_session({}, ["one", "two"], session_id="s-watch")
            await store.update_session("s-watch", {"metadata": metadata})

    anyio.run(start)
    return repo


@pytest.fixture
def watcher(repo: Path) -> Iterator[subprocess.Popen[str]]:
    process = spawn("status", "--watch", cwd=repo)
    try:
        yield process
    finally:
        reap(process)


def write(repo: Path, task_id: str, status: TaskStatus, phase: str | None = None) -> None:
    async def update() -> None:
        async with FileStateStore.for_repo(repo) as store:
            await store.update_task_state(task_id, {"status": status, "current_phase": phase})

    anyio.run(update)


def end_session(repo: Path, status: SessionStatus) -> None:
    async def update() -> None:
        async with FileStateStore.for_repo(repo) as store:
            await store.update_session("s-watch", {"status": status})

    anyio.run(update)


def next_line(process: subprocess.Popen[str]) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    assert line, f"the watcher ended early: {process.communicate(timeout=patience(10))}"
    return line.rstrip("\n")


def test_each_write_of_another_process_is_shown_until_the_run_ends(
    repo: Path, watcher: subprocess.Popen[str]
) -> None:
    assert {next_line(watcher), next_line(watcher)} == {"one: queued", "two: queued"}
    write(repo, "one", TaskStatus.RUNNING, "build")
    assert next_line(watcher) == "one: running (build)"
    write(repo, "two", TaskStatus.RUNNING, "build")
    assert next_line(watcher) == "two: running (build)"
    write(repo, "one", TaskStatus.DONE)
    assert next_line(watcher) == "one: done"
    write(repo, "two", TaskStatus.FAILED)
    assert next_line(watcher) == "two: failed"
    # Every task has ended, but the session is still active and its orchestrator alive: the
    # watcher waits for the session's record (the run writes it last) and ends on that frame.
    end_session(repo, SessionStatus.FAILED)
    out, err = watcher.communicate(timeout=patience(25))
    assert watcher.returncode == 1, err  # a task failed: the run's exit code
    lines = out.splitlines()
    assert lines[0] == "session s-watch: failed, 1/2 done, 1 failed, 0 in conflict", out


WRITER = """\
import sys, anyio
from orchestrator.state import FileStateStore

async def main() -> None:
    async with FileStateStore.for_repo(sys.argv[1]) as store:
        await store.update_task_state("one", {"status": "running"})

anyio.run(main)
"""


def test_a_waiter_wakes_when_another_process_writes(repo: Path) -> None:
    async def wait_for_the_writer() -> int:
        async with FileStateStore.for_repo(repo) as store:
            before = await store.get_task_state("one")
            assert before is not None
            writer = subprocess.Popen([sys.executable, "-c", WRITER, str(repo)])
            try:
                after = await store.wait_for_update(RecordRef.task("one"), before.version, 25)
            finally:
                await anyio.to_thread.run_sync(writer.wait)
            assert writer.returncode == 0
            assert after is not None and after.status == TaskStatus.RUNNING
            return after.version

    assert anyio.run(wait_for_the_writer) == 2


@pytest.mark.postgres
def test_a_team_runs_status_is_followed_through_the_database(pg_dsn: str, tmp_path: Path) -> None:
    """On PostgreSQL the watcher hears the run's writes through LISTEN/NOTIFY. The builds wait
    for a gate opened once the watcher has shown the first one running: a watcher slow to
    start on a loaded machine would otherwise begin after it ran."""
    team = Team(tmp_path, pg_dsn)
    gate = tmp_path / "gate"
    tasks = [team_task(n, sleep=1.5) for n in (1, 2)]
    for task in tasks:
        build = task["metadata"]["phase_instructions"]["build"]
        task["metadata"]["phase_instructions"]["build"] = f"WAIT_FOR {gate} 60\n{build}"
    team.workstation("a", tasks, sessions=1, readable=tmp_path)
    config = str(tmp_path / "a.yaml")
    team.start("a")
    wait_for(lambda: team.council("status", config, "--json").returncode == 0, "the session")
    watcher = subprocess.Popen(
        [*COUNCIL, "status", config, "--watch"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=team.env(),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter_lines(watcher)), daemon=True)
    reader.start()
    try:
        wait_for(lambda: "t01: running (build)" in lines, "the watcher showing t01 running")
        gate.touch()
        code, _, err = team.finish("a", timeout=60)
        assert code == 0, err
        watcher.wait(timeout=patience(25))
        reader.join(timeout=patience(5))
        errors = watcher.stderr.read() if watcher.stderr else ""
    finally:
        reap(watcher)
        team.stop_all()
        for stream in (watcher.stdout, watcher.stderr):
            if stream is not None:
                stream.close()
    assert watcher.returncode == 0, errors
    out = "\n".join(lines)
    for task_id in ("t01", "t02"):
        assert lines.index(f"{task_id}: running (build)") < lines.index(f"{task_id}: done"), out


def iter_lines(process: subprocess.Popen[str]) -> Iterator[str]:
    """Each line ``process`` prints, as it prints it."""
    assert process.stdout is not None
    for line in process.stdout:
        yield line.rstrip("\n")
