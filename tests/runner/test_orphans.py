"""What a dead orchestrator left running: recorded while it ran (``cli_runs``), stopped by its
successor (``orphans``). Real processes, a real state store; the dead orchestrator is a real
process that has exited, so its identity is that of a dead process."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from orchestrator.adapter import AdapterRequest
from orchestrator.process import procid
from orchestrator.process.procid import ProcessId
from orchestrator.runner.cli_run import run_cli
from orchestrator.runner.cli_runs import CLI_RUNS, CliRunBook, recorded_clis
from orchestrator.runner.orphans import ORPHANS_STOPPED, stop_orphans
from orchestrator.state import FileStateStore
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli
from tests.support.timing import patience

Started = list[subprocess.Popen[bytes]]
SLEEP = [sys.executable, "-c", "import time; time.sleep(60)"]
# A leader that starts a child in its own group, prints the child's pid, then exits.
LEADER_LEAVES_CHILD = [
    sys.executable,
    "-c",
    "import subprocess, sys; child = subprocess.Popen(sys.argv[1:]); print(child.pid)",
    *SLEEP,
]


def alive(pid: int) -> bool:
    return procid.start_time(pid) is not None


def wait_gone(pid: int, seconds: float = 10.0) -> bool:
    deadline = time.monotonic() + seconds
    while alive(pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


@pytest.fixture
def started() -> Iterator[Started]:
    """Processes a test starts; whatever is left of them is killed afterwards."""
    processes: Started = []
    yield processes
    for process in processes:
        if process.poll() is None:
            with_group = os.getpgid(process.pid) == process.pid
            (os.killpg if with_group else os.kill)(process.pid, signal.SIGKILL)
        process.wait()


@pytest.fixture
def dead_orchestrator() -> ProcessId:
    """The identity of a process that ran on this host and has exited."""
    process = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read()"], stdin=-1)
    identity = ProcessId(process.pid, procid.current().host, procid.start_time(process.pid) or "")
    process.communicate(b"")
    assert procid.is_alive(identity) is False
    return identity


def spawn(
    started: Started,
    argv: list[str],
    cwd: Path,
    marker: ProcessId | None = None,
    stdout: int | None = None,
) -> subprocess.Popen[bytes]:
    env = dict(os.environ)
    env.pop(procid.MARKER_ENV, None)
    if marker is not None:
        env[procid.MARKER_ENV] = marker.marker()
    process = subprocess.Popen(argv, cwd=cwd, env=env, start_new_session=True, stdout=stdout)
    started.append(process)
    return process


async def record(
    store: FileStateStore, task_id: str, cli: ProcessId, orchestrator: ProcessId
) -> None:
    data = {**cli.as_dict(), "pgid": cli.pid, "task": task_id, "phase": "build"}
    await store.put_record(CLI_RUNS, task_id, {**data, "orchestrator": orchestrator.as_dict()})


def identity(pid: int) -> ProcessId:
    return ProcessId(pid, procid.current().host, procid.start_time(pid) or "")


@pytest.fixture
def scope(tmp_path: Path) -> Path:
    path = tmp_path / "repo" / ".council"
    (path / "worktrees" / "s1").mkdir(parents=True)
    return path


async def test_a_recorded_cli_of_a_dead_orchestrator_is_killed_and_its_record_removed(
    tmp_path: Path,
    scope: Path,
    started: list[subprocess.Popen[bytes]],
    dead_orchestrator: ProcessId,
) -> None:
    cli = spawn(started, SLEEP, tmp_path)  # outside the scope, no marker: found by its record
    async with FileStateStore(tmp_path / "state") as store:
        await record(store, "t1", identity(cli.pid), dead_orchestrator)
        seen: list[str] = []
        store.subscribe(lambda event: seen.append(event.type))
        stopped = await stop_orphans(store, scope)
        assert [(o.pid, o.group, o.task_id) for o in stopped] == [(cli.pid, True, "t1")]
        assert (
            cli.wait(timeout=patience(10)) == -signal.SIGKILL
        )  # gone by the time stop_orphans returns
        assert await recorded_clis(store) == []
        assert ORPHANS_STOPPED in seen


async def test_the_group_is_killed_when_its_leader_already_exited(
    tmp_path: Path,
    scope: Path,
    started: list[subprocess.Popen[bytes]],
    dead_orchestrator: ProcessId,
) -> None:
    leader = spawn(started, LEADER_LEAVES_CHILD, tmp_path, stdout=subprocess.PIPE)
    leader_id = identity(leader.pid)
    assert leader.stdout is not None
    child = int(leader.stdout.readline())
    leader.stdout.close()
    leader.wait(timeout=patience(10))
    assert alive(child) and os.getpgid(child) == leader.pid
    try:
        async with FileStateStore(tmp_path / "state") as store:
            await record(store, "t1", leader_id, dead_orchestrator)
            await stop_orphans(store, scope)
        assert wait_gone(child, 0)
    finally:
        if alive(child):
            os.kill(child, signal.SIGKILL)


async def test_a_pid_now_used_by_another_process_is_never_signalled(
    tmp_path: Path,
    scope: Path,
    started: list[subprocess.Popen[bytes]],
    dead_orchestrator: ProcessId,
) -> None:
    stranger = spawn(started, SLEEP, tmp_path)
    reused = ProcessId(stranger.pid, procid.current().host, "another-boot:12345")
    async with FileStateStore(tmp_path / "state") as store:
        await record(store, "t1", reused, dead_orchestrator)
        assert await stop_orphans(store, scope) == []
        assert await recorded_clis(store) == []  # the record named a process that is gone
    assert stranger.poll() is None


async def test_the_clis_of_a_live_orchestrator_are_left_alone(
    tmp_path: Path, scope: Path, started: Started
) -> None:
    cli = spawn(started, SLEEP, scope / "worktrees" / "s1", marker=procid.current())
    async with FileStateStore(tmp_path / "state") as store:
        await record(store, "t1", identity(cli.pid), procid.current())
        assert await stop_orphans(store, scope) == []
        assert len(await recorded_clis(store)) == 1
    assert cli.poll() is None


async def test_an_unrecorded_process_is_found_by_the_marker_of_its_dead_orchestrator(
    tmp_path: Path,
    scope: Path,
    started: list[subprocess.Popen[bytes]],
    dead_orchestrator: ProcessId,
) -> None:
    # Killed before it could record its CLI: only the marker in the CLI's environment and
    # its working directory say whose it is.
    inside = spawn(started, SLEEP, scope / "worktrees" / "s1", marker=dead_orchestrator)
    elsewhere = spawn(started, SLEEP, tmp_path, marker=dead_orchestrator)
    unmarked = spawn(started, SLEEP, scope / "worktrees" / "s1")
    async with FileStateStore(tmp_path / "state") as store:
        stopped = await stop_orphans(store, scope)
    assert [(o.pid, o.task_id) for o in stopped] == [(inside.pid, None)]
    assert inside.wait(timeout=patience(10)) == -signal.SIGKILL
    assert elsewhere.poll() is None and unmarked.poll() is None


async def test_a_cli_is_recorded_while_it_runs_and_carries_the_marker(tmp_path: Path) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    cli = FakeCli(echo_env=[procid.MARKER_ENV], ticks=3, tick=0.02)
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    seen: list[object] = []
    async with FileStateStore(tmp_path / "state") as store:

        class Watch(CliRunBook):
            async def began(self, pid: int, begin: Callable[[], str | None]) -> None:
                await super().began(pid, begin)
                seen.append((await recorded_clis(store))[0])

        watch = Watch(store, "t1", "build")
        run = await run_cli(
            FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs", watch=watch
        )
        assert await recorded_clis(store) == []  # removed once the CLI ended
    (running,) = seen
    assert running.task_id == "t1" and running.phase == "build"  # type: ignore[attr-defined]
    assert running.pgid == running.process.pid  # type: ignore[attr-defined]
    assert running.orchestrator == procid.current()  # type: ignore[attr-defined]
    assert running.process.started  # type: ignore[attr-defined]
    said = [event.text for event in run.events]
    assert f"{procid.MARKER_ENV}={procid.current().marker()}" in said


async def test_ending_leaves_a_record_that_names_another_process(tmp_path: Path) -> None:
    async with FileStateStore(tmp_path / "state") as store:
        book = CliRunBook(store, "t1", "build")
        await book.started(os.getpid(), procid.start_time(os.getpid()))
        await book.ended(os.getpid() + 1)
        assert [r.process.pid for r in await recorded_clis(store)] == [os.getpid()]
        await book.ended(os.getpid())
        assert await recorded_clis(store) == []


async def test_ending_removes_the_record_its_start_wrote_without_reading_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """One store call at the end (the delete, fenced by the version the start wrote); a
    record written again meanwhile, by a later CLI of the task, stays."""
    async with FileStateStore(tmp_path / "state") as store:
        book = CliRunBook(store, "t1", "build")
        await book.started(os.getpid(), procid.start_time(os.getpid()))
        reads: list[str] = []
        read = store.get_record

        async def counted(namespace: str, key: str) -> object:
            reads.append(key)
            return await read(namespace, key)

        monkeypatch.setattr(store, "get_record", counted)
        await book.ended(os.getpid())
        assert reads == [] and await recorded_clis(store) == []

        await book.started(os.getpid(), procid.start_time(os.getpid()))
        later = CliRunBook(store, "t1", "review")
        await later.started(
            os.getpid(), procid.start_time(os.getpid())
        )  # the record replaced: a new version
        await book.ended(os.getpid())
        assert [r.phase for r in await recorded_clis(store)] == ["review"]
