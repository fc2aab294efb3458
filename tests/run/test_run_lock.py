"""Two orchestrators on one repository: while ``council run`` runs, a second ``run`` or a
``resume`` is refused at once in one line naming the running one (pid, host, start time), exit
code 2, and changes nothing; ``status`` and ``worktrees list`` keep working; a lock left by a
dead orchestrator never blocks the next one. Real processes throughout."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest

from orchestrator.process.procid import ProcessId
from orchestrator.run.run_lock import RUN_LOCK, RunHolder, acquire_run_lock, read_holder
from tests.support.cli_process_helpers import COUNCIL, ENV, council, scripted_clis, wait_for
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience
from tests.support.worktree_helpers import git

CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: slow, prompt: "SLEEP 60\\nWRITE slow.txt done"}
"""


def building(repo: Path) -> bool:
    path = repo / ".council" / "events.jsonl"
    if not path.exists():
        return False
    lines = [line for line in path.read_text().splitlines() if line.endswith("}")]
    return any(json.loads(line)["type"] == "phase.started" for line in lines)


def snapshot(root: Path) -> dict[str, object]:
    """Every path under ``root`` with its size and modification time, plus git's refs and
    worktrees: what a refused command must leave exactly as it was."""
    files = {}
    for directory, names, filenames in os.walk(root):
        for name in names + filenames:
            info = (Path(directory) / name).lstat()
            files[str(Path(directory, name).relative_to(root))] = (info.st_size, info.st_mtime_ns)
    repo = root / "repo"
    return {
        "files": files,
        "refs": git(repo, "for-each-ref"),
        "worktrees": git(repo, "worktree", "list", "--porcelain"),
    }


@pytest.fixture
def first_run(tmp_path: Path) -> Iterator[tuple[Path, Path, subprocess.Popen[bytes]]]:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    process = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=ENV,
    )
    yield tmp_path / "repo", config, process
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
        process.wait(timeout=patience(10))
    for pid in scripted_clis(tmp_path):
        os.killpg(os.getpgid(pid), signal.SIGKILL)  # each CLI runs in a group of its own


def test_a_second_run_or_resume_is_refused_at_once_and_changes_nothing(
    tmp_path: Path, first_run: tuple[Path, Path, subprocess.Popen[bytes]]
) -> None:
    repo, config, process = first_run
    wait_for(lambda: building(repo), "the first run's CLI to start")

    # Read-only commands work beside the live run.
    status = council("status", config, "--json", cwd=tmp_path)
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["tasks"][0]["status"] == "running"
    listed = council("worktrees", "list", config, cwd=tmp_path)
    assert listed.returncode == 0, listed.stderr
    assert "slow" in listed.stdout

    # Frozen, the first run changes nothing either: any change is the second command's.
    process.send_signal(signal.SIGSTOP)
    try:
        before = snapshot(tmp_path)
        for command in ("run", "resume"):
            refused = council(command, config, cwd=tmp_path)
            assert refused.returncode == 2, refused.stderr
            holder = read_holder(repo)
            assert holder is not None
            since = holder.since.astimezone().isoformat(timespec="seconds")
            assert refused.stderr.strip() == (
                f"error: another orchestrator is running on {repo}: pid {process.pid} on "
                f"{socket.gethostname()}, started {since}; stop it (Ctrl-C) or wait for it to "
                "finish"
            )
            assert refused.stdout == ""
            assert snapshot(tmp_path) == before
        # Every refusal before any change: --if-base-dirty detach leaves the checkout alone.
        (repo / "README.md").write_text("the user's own edit\n")
        for command in ("run", "resume"):
            refused = council(command, config, "--if-base-dirty", "detach", cwd=tmp_path)
            assert refused.returncode == 2, refused.stderr
            assert "another orchestrator is running" in refused.stderr
            head = subprocess.run(
                ["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"],
                capture_output=True,
                text=True,
                check=False,
            )
            assert head.stdout.strip() == "refs/heads/main", refused.stderr
    finally:
        process.send_signal(signal.SIGCONT)
    assert process.poll() is None  # the refusals did not disturb it


def test_a_lock_left_by_a_killed_orchestrator_never_blocks(
    tmp_path: Path, first_run: tuple[Path, Path, subprocess.Popen[bytes]]
) -> None:
    repo, config, process = first_run
    wait_for(lambda: building(repo), "the first run's CLI to start")
    process.kill()
    process.wait(timeout=patience(10))
    for pid in scripted_clis(tmp_path):
        os.killpg(os.getpgid(pid), signal.SIGKILL)

    # The dead holder's note is still in the lock file; only the OS lock died with it.
    holder = read_holder(repo)
    assert holder is not None and holder.process.pid == process.pid

    config.write_text(CONFIG.replace("SLEEP 60\\n", ""))
    resumed = council("resume", config, "--json", cwd=tmp_path)
    assert resumed.returncode == 0, resumed.stderr
    assert json.loads(resumed.stdout)["status"] == "completed"
    assert merged_tasks(repo) == ["slow"]
    assert (repo / RUN_LOCK).read_bytes() == b""  # released, and no stale holder left behind


def test_a_holder_that_does_not_say_who_it_is_still_blocks(tmp_path: Path) -> None:
    """Whatever holds the OS lock blocks a run, even when its note is missing or names a dead
    process (a holder that just took the lock has not written its note yet)."""
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    lock_path = repo / RUN_LOCK
    lock_path.parent.mkdir(parents=True)
    dead = RunHolder(ProcessId(999_999_999, socket.gethostname(), "gone"), datetime(2020, 1, 1))
    lock_path.write_bytes(dead.encode())  # a note a dead orchestrator left behind
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import fcntl, sys, time\n"
            f"f = open({str(lock_path)!r}, 'rb+')\n"
            "fcntl.flock(f, fcntl.LOCK_EX)\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "locked\n"
        before = snapshot(tmp_path)
        refused = council("run", config, cwd=tmp_path)
        assert refused.returncode == 2, refused.stderr
        assert refused.stderr.strip() == (
            f"error: another process holds {lock_path} and has not said who it is; another "
            f"orchestrator is probably running on {repo}"
        )
        assert snapshot(tmp_path) == before
    finally:
        holder.kill()
        holder.wait(timeout=patience(10))
        assert holder.stdout is not None
        holder.stdout.close()

    # Its holder gone, the lock is free; taking it replaces the dead note with ours.
    with acquire_run_lock(repo) as lock:
        assert read_holder(repo) == lock.holder
        assert lock.holder.process.pid == os.getpid()


def test_a_live_holder_of_another_lock_kind_is_refused_before_the_store_opens(
    tmp_path: Path,
) -> None:
    """An orchestrator of an earlier version (its note names no ``record_locks``: it locked a
    record's ``.lock`` file, this version its directory) running on the repository: a command
    that would write beside it is refused at once, naming it, since the two locks would not keep
    each other out. A note of this version, or one a dead holder left, refuses nothing."""
    from orchestrator.errors import RunLocked
    from orchestrator.process import procid
    from orchestrator.run.run_lock import check_record_locks

    repo = new_repo(tmp_path)
    lock_path = repo / RUN_LOCK
    lock_path.parent.mkdir(parents=True)
    alive = RunHolder(procid.current(), datetime(2026, 1, 1), record_locks=None)
    lock_path.write_bytes(alive.encode())
    assert read_holder(repo) == alive
    with pytest.raises(RunLocked, match=r"another version runs on .*pid \d+"):
        check_record_locks(repo)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    cancelled = council("cancel", config, "slow", cwd=tmp_path)
    assert cancelled.returncode != 0
    assert "another version" in cancelled.stderr + cancelled.stdout
    lock_path.write_bytes(RunHolder(procid.current(), datetime(2026, 1, 1)).encode())
    check_record_locks(repo)  # this version's note
    gone = ProcessId(999_999_999, socket.gethostname(), "gone")
    lock_path.write_bytes(RunHolder(gone, datetime(2020, 1, 1), record_locks=None).encode())
    check_record_locks(repo)  # a dead holder's


def test_a_fifo_or_a_link_in_place_of_the_lock_file_is_read_as_no_note(tmp_path: Path) -> None:
    """Every command that writes beside a run reads the run lock's note: a FIFO there answers
    at once (no wait for a writer), a link is not followed, an oversized file is no note."""
    repo = new_repo(tmp_path)
    lock_path = repo / RUN_LOCK
    lock_path.parent.mkdir(parents=True)
    os.mkfifo(lock_path)
    assert read_holder(repo) is None
    lock_path.unlink()
    elsewhere = tmp_path / "note"
    elsewhere.write_bytes(RunHolder(ProcessId(1, "h", "s"), datetime(2026, 1, 1)).encode())
    lock_path.symlink_to(elsewhere)
    assert read_holder(repo) is None
    lock_path.unlink()
    lock_path.write_bytes(b" " * 5000 + elsewhere.read_bytes())
    assert read_holder(repo) is None
    lock_path.write_bytes(elsewhere.read_bytes())
    assert read_holder(repo) is not None
