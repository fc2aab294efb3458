"""The ``council`` command as a real process, and what a test watches while it runs: its
event log, the scripted CLIs it started (found through /proc), the store's task records."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio

from orchestrator.models import TaskState
from orchestrator.state import FileStateStore
from orchestrator.state.file.log.event_archive import archive_lines, archives
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}


def council(*args: object, cwd: Path, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``council ARGS`` to the end."""
    return subprocess.run(
        [*COUNCIL, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(timeout),
    )


def spawn(*args: object, cwd: Path, ignore_sigint: bool = False) -> subprocess.Popen[str]:
    """Start ``council ARGS``; its stdout and stderr are pipes (read them with communicate).
    ``ignore_sigint``: started with SIGINT ignored, as a script's background job is."""

    def deaf() -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)

    return subprocess.Popen(
        [*COUNCIL, *map(str, args)],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        preexec_fn=deaf if ignore_sigint else None,
    )


def reap(process: subprocess.Popen[Any]) -> None:
    """Make sure ``process`` is gone and waited for, its pipes closed, frozen or not (a test's
    ``finally``): a Popen left unwaited, or a pipe left open, warns when it is collected, and
    fails whichever test is running then."""
    if process.poll() is None:
        os.kill(process.pid, signal.SIGCONT)
        process.kill()
    process.wait(timeout=patience(30))
    for pipe in (process.stdin, process.stdout, process.stderr):
        if pipe is not None:
            pipe.close()  # a pipe left open warns when collected, in whichever test runs then


def wait_for(condition: Callable[[], bool], what: str, seconds: float = 60) -> None:
    """Poll ``condition``; ``seconds`` (scaled, ``timing.patience``) is only an upper bound
    for "it eventually happens"."""
    deadline = time.monotonic() + patience(seconds)
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"timed out waiting for {what}")
        time.sleep(0.05)


def events(repo: Path) -> list[dict[str, Any]]:
    """The run's events so far, the rotated archives' first (a line still being written, or
    torn, is not one)."""
    path = repo / ".council" / "events.jsonl"
    lines = [line for archive in archives(path) for line in archive_lines(archive)]
    with contextlib.suppress(FileNotFoundError):
        lines += path.read_bytes().splitlines()
    found = []
    for line in lines:
        try:
            found.append(json.loads(line))
        except ValueError:
            continue
    return found


def seen(repo: Path, kind: str, **data: str) -> bool:
    return any(
        event["type"] == kind and all(event["data"].get(k) == v for k, v in data.items())
        for event in events(repo)
    )


def scripted_clis(root: Path) -> list[int]:
    """Pids of scripted-cli processes working anywhere under ``root``."""
    return processes_running(b"scripted_cli", root)


def processes_running(command_part: bytes, root: Path) -> list[int]:
    """Pids of live (not zombie) processes whose command line holds ``command_part`` and whose
    working directory is under ``root`` (not the sandbox around one: its is the CLI's too)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            command = (entry / "cmdline").read_bytes()
            cwd = Path(os.readlink(entry / "cwd"))
            state = (entry / "stat").read_bytes().rsplit(b")", 1)[1].split()[0]
        except (OSError, IndexError):  # gone meanwhile, or not ours to look at
            continue
        if os.path.basename(command.split(b"\0")[0]) == b"bwrap":
            continue  # the sandbox around a CLI (its command line holds the CLI's)
        if command_part in command and cwd.is_relative_to(root) and state != b"Z":
            found.append(int(entry.name))
    return found


def sleeping(pid: int) -> bool:
    """Is the process in a sleep call (the scripted CLI's ``SLEEP``)?"""
    try:
        return "nanosleep" in Path(f"/proc/{pid}/wchan").read_text()
    except OSError:
        return False


def task_states(repo: Path) -> dict[str, TaskState]:
    async def read() -> list[TaskState]:
        async with FileStateStore(repo / ".council" / "state") as store:
            return await store.list_tasks()

    return {state.task_id: state for state in anyio.run(read)}


def file_on(repo: Path, ref: str, path: str) -> str | None:
    """The text of ``path`` at ``ref``, or None when it is not there."""
    shown = subprocess.run(
        ["git", "-C", str(repo), "show", f"{ref}:{path}"], capture_output=True, text=True
    )
    return shown.stdout if shown.returncode == 0 else None


def alive(pid: int) -> bool:
    """Running (a zombie waiting for its parent to reap it counts as dead)."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as handle:
            state = handle.read().rsplit(b")", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state not in (b"Z", b"X")


def wait_gone(pids: list[int], timeout: float = 5.0) -> list[int]:
    """The pids still alive after ``timeout`` seconds, scaled (``timing.patience``; an upper
    bound: it returns early)."""
    deadline = time.monotonic() + patience(timeout)
    while (left := [pid for pid in pids if alive(pid)]) and time.monotonic() < deadline:
        time.sleep(0.02)
    return left
