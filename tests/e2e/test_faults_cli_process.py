"""CLIs that hang, ignore SIGTERM, spawn daemons, die by a signal or always fail, run by the
real orchestrator (the ``council run`` process for the worst one, the ``Council`` API in this
process for the rest): each session ends within its time limit with the right outcome, no
process of the CLI's family outlives it (a double-forked ``setsid()`` daemon included), the
work it did is committed on its kept branch and worktree, and retries follow the backoff up
to ``max_retries`` with the last error in the task's state."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio
import pytest

from tests.support.cli_process_helpers import processes_running, wait_gone
from tests.support.fault_helpers import FAULT_CLIS, FaultRun, kill_all
from tests.support.spare_user import as_users, hand_over, user_dir

# The family tests write the pids they see to a file outside the worktree and compare them
# with this machine's: a sandboxed CLI can neither write there nor see machine-wide pids (it
# runs in a pid namespace of its own, whose end takes every process in it along). They test
# the orchestrator's own search for a CLI's family, which is what holds without a sandbox.
OUTSIDE = "none"


@pytest.fixture
def pidfile(tmp_path: Path) -> Iterator[Path]:
    path = tmp_path / "family.pids"
    yield path
    if path.exists():  # a failing test must not leave sleepers behind for the suite
        kill_all(pids_in(path))


def pids_in(path: Path) -> list[int]:
    return [int(pid) for pid in path.read_text().split()]


def fault_processes(root: Path) -> list[int]:
    """Living processes running a fault CLI with their working directory under ``root``."""
    return processes_running(str(FAULT_CLIS).encode(), root)


def times(run: FaultRun, kind: str) -> list[datetime]:
    return [datetime.fromisoformat(event["ts"]) for event in run.events(kind)]


def task_of(report: dict[str, Any]) -> dict[str, Any]:
    (task,) = report["tasks"]
    return dict(task)


def kept(run: FaultRun) -> None:
    """The failed task's worktree and branch are still there, with the CLI's work committed."""
    state = run.state()
    assert state["branch"] and Path(state["worktree"]).is_dir()
    assert run.branch_has(state["branch"], "work.txt")
    assert not run.on_main("work.txt")


async def test_a_hung_cli_times_out_and_is_retried_after_the_backoff(tmp_path: Path) -> None:
    run = FaultRun(
        tmp_path,
        "hang.py",
        phases=[{"name": "build", "timeout": 1}],
        retry={"max_retries": 1, "backoff_initial": 0.4, "jitter": False},
    )
    report = await run.run_here()  # the CLI hangs forever: not stopped, this would hang

    assert report["totals"]["failed"] == 1
    task = task_of(report)
    assert (task["status"], task["attempts"]) == ("failed", 2)
    state = run.state()
    assert state["error"].startswith("gave up after 2 attempts; last error: time limit")
    assert state["phases"]["build"]["outcome"] == "timed_out"
    (retry,) = run.events("task.retry")
    assert retry["data"]["delay"] == 0.4
    first, second = times(run, "task.dispatched")
    assert (second - datetime.fromisoformat(retry["ts"])).total_seconds() >= 0.4
    assert second > first
    assert state["branch"] and Path(state["worktree"]).is_dir()
    assert fault_processes(tmp_path) == []


async def test_the_task_time_limit_stops_a_hung_cli(tmp_path: Path) -> None:
    run = FaultRun(tmp_path, "hang.py", task_timeout=1.5)
    task = task_of(await run.run_here())  # the CLI hangs forever: not stopped, this would hang

    assert (task["status"], task["attempts"]) == ("failed", 1)
    assert "task time limit of 1.5s reached" in run.state()["error"]
    assert fault_processes(tmp_path) == []


def test_a_cli_ignoring_sigterm_dies_with_its_whole_family(tmp_path: Path, pidfile: Path) -> None:
    # The CLI, a child in its group and a double-forked setsid() daemon all ignore SIGTERM.
    run = FaultRun(
        tmp_path,
        "family.py",
        env={"FAULT_PIDS": str(pidfile), "FAULT_THEN": "hang", "FAULT_IGNORE_TERM": "1"},
        sandbox=OUTSIDE,
        phases=[{"name": "build", "timeout": 2}],
    )
    finished = run.run()

    pids = pids_in(pidfile)
    assert len(pids) == 3
    assert wait_gone(pids) == []
    assert finished.task()["status"] == "failed"
    state = run.state()
    assert state["phases"]["build"]["outcome"] == "timed_out"
    assert "time limit" in state["error"]
    assert state["branch"] and Path(state["worktree"]).is_dir()


async def test_the_stop_grace_is_the_configured_one(
    tmp_path: Path, pidfile: Path, caplog: pytest.LogCaptureFixture
) -> None:
    run = FaultRun(
        tmp_path,
        "family.py",
        env={"FAULT_PIDS": str(pidfile), "FAULT_THEN": "hang", "FAULT_IGNORE_TERM": "1"},
        sandbox=OUTSIDE,
        phases=[{"name": "build", "timeout": 2}],
        scheduler={"stop_grace": 0.3},
    )
    started = time.monotonic()
    with caplog.at_level(logging.INFO, logger="orchestrator.process.stop"):
        task = task_of(await run.run_here())

    assert task["status"] == "failed"
    assert "still running 0.3s after SIGTERM; sending SIGKILL" in caplog.text
    assert wait_gone(pids_in(pidfile)) == []
    assert time.monotonic() - started >= 2 + 0.3  # it ignored SIGTERM: the grace was waited


async def test_daemons_of_a_cli_that_exits_die_with_it_setsid_ones_too(
    tmp_path: Path, pidfile: Path
) -> None:
    run = FaultRun(tmp_path, "family.py", env={"FAULT_PIDS": str(pidfile)}, sandbox=OUTSIDE)
    task = task_of(await run.run_here())

    assert task["status"] == "done"
    assert run.on_main("work.txt")
    pids = pids_in(pidfile)
    assert len(pids) == 3
    assert wait_gone(pids) == []
    # Nothing ran on in the worktree, so it was removed, not kept as busy.
    assert not Path(run.state()["worktree"]).exists()


def test_a_fully_detached_daemon_is_found_stopped_and_reported(
    tmp_path: Path, pidfile: Path
) -> None:
    # No run mark (empty environment), not in the CLI's group or session, cwd / and no open
    # file in the worktree: the `council` process adopted it (a child subreaper), so it is
    # found once the CLI exits, stopped before the worktree is committed and removed, and
    # named in the events.
    run = FaultRun(tmp_path, "daemon.py", env={"FAULT_PIDS": str(pidfile)}, sandbox=OUTSIDE)
    finished = run.run(timeout=60)

    assert finished.returncode == 0, finished.stderr[-2000:]
    assert finished.task()["status"] == "done"
    (daemon,) = pids_in(pidfile)
    assert wait_gone([daemon], timeout=2.0) == []
    assert run.on_main("work.txt")
    assert not Path(run.state()["worktree"]).exists()
    stopped = [e["data"] for e in run.events() if e["type"] == "cli.survivors_stopped"]
    assert [(d["phase"], [p.split(":")[0] for p in d["processes"]]) for d in stopped] == [
        ("build", [f"pid {daemon}"])
    ]


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGSEGV])
async def test_a_cli_killed_by_a_signal_crashed_and_its_work_is_kept(
    tmp_path: Path, sig: signal.Signals
) -> None:
    run = FaultRun(tmp_path, "killed.py", env={"FAULT_SIGNAL": sig.name.removeprefix("SIG")})
    task = task_of(await run.run_here())

    assert task["status"] == "failed"
    state = run.state()
    assert state["phases"]["build"]["outcome"] == "crashed"
    assert state["error"].endswith(f"killed by signal {int(sig)}")
    kept(run)


async def test_a_cli_that_always_fails_is_retried_with_backoff_up_to_max_retries(
    tmp_path: Path,
) -> None:
    run = FaultRun(
        tmp_path,
        "fail.py",
        retry={"max_retries": 2, "backoff_initial": 0.2, "multiplier": 2, "jitter": False},
    )
    task = task_of(await run.run_here())

    assert (task["status"], task["attempts"]) == ("failed", 3)
    state = run.state()
    assert state["error"].startswith("gave up after 3 attempts; last error: ")
    assert "the model refused to cooperate" in state["error"]
    retries = run.events("task.retry")
    assert [event["data"]["delay"] for event in retries] == [0.2, 0.4]
    dispatched = times(run, "task.dispatched")
    assert len(dispatched) == 3
    for retry, next_start in zip(retries, dispatched[1:], strict=True):
        waited = (next_start - datetime.fromisoformat(retry["ts"])).total_seconds()
        assert waited >= retry["data"]["delay"]
    assert [event["data"]["failures"] for event in retries] == [1, 2]
    assert run.events("task.failed")[-1]["data"]["error"] == state["error"]
    assert state["branch"] and Path(state["worktree"]).is_dir()


@pytest.mark.sandbox
async def test_under_the_sandbox_a_cli_s_daemon_ends_with_it_and_no_process_is_looked_through(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same daemon, its CLI confined: the CLI's pid namespace, which the kernel empties
    when the sandbox's init ends, takes it down; the orchestrator does not look through the
    machine's processes for the CLI's mark or directories after it (a scan per CLI run)."""
    from orchestrator.process import stop, tree

    looked: list[Any] = []
    real_find = tree.find_strays

    def counted(family: Any, *, leader_alive: bool) -> list[Any]:
        if family.mark is not None or family.roots:
            looked.append(family)
        return real_find(family, leader_alive=leader_alive)

    monkeypatch.setattr(stop, "find_strays", counted)
    run = FaultRun(tmp_path, "daemon.py", env={"FAULT_PIDS": "/dev/null"})
    report = await run.run_here()

    assert task_of(report)["status"] == "done", report
    assert run.on_main("daemon.txt")  # the daemon ran, inside, while its CLI did
    assert looked == []
    assert await _daemons_left(tmp_path) == []


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_under_the_sandbox_a_cli_s_daemon_ends_with_it_as_root_and_as_a_user(
    tmp_path: Path, uid: int | None
) -> None:
    """The confined daemon's end, ``council run`` run by root and by an unprivileged user:
    bubblewrap gives the CLI a pid namespace either way."""
    with user_dir(uid, tmp_path) as base:
        run = FaultRun(base, "daemon.py", env={"FAULT_PIDS": "/dev/null"})
        hand_over(base, uid)
        finished = run.run(user=uid, timeout=90)
        assert finished.returncode == 0, finished.stderr[-3000:]
        assert finished.task()["status"] == "done", finished.report
        assert anyio.run(_daemons_left, base) == []


async def _daemons_left(root: Path, patience: float = 2.0) -> list[int]:
    """``_daemons_of(root)`` once none is left, or after ``patience`` seconds."""
    deadline = time.monotonic() + patience
    while (left := _daemons_of(root)) and time.monotonic() < deadline:
        await anyio.sleep(0.05)
    return left


def _daemons_of(root: Path) -> list[int]:
    """Live processes of ``daemon.py --daemon`` started for a worktree under ``root``."""
    found = []
    for entry in Path("/proc").iterdir():
        try:
            command = (entry / "cmdline").read_bytes()
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):
            continue
        if b"--daemon" in command and str(root).encode() in command and state != b"Z":
            found.append(int(entry.name))
    return found
