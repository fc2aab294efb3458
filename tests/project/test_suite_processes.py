"""The suite's own ``council`` processes, forked from a process that imported the command
(``tests/support/zygote.py``): each is what ``exec`` would have made, as a test sees it (its
pid, exit status, signals, streams, directory, environment and command line), and a start
the fork could not make the same goes through ``exec``."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest

from tests.support import zygote
from tests.support.cli_process_helpers import COUNCIL, ENV
from tests.support.timing import patience

pytestmark = pytest.mark.skipif(
    os.environ.get(zygote.FRESH_ENV) == "1", reason="the suite's processes go through exec"
)


def _forked(process: subprocess.Popen[str]) -> bool:
    return "_zygote_status" in process.__dict__


def _both(args: list[str], cwd: Path, env: dict[str, str]) -> list[tuple[int, str, str, bool]]:
    """``council ARGS`` forked, then through exec (a ``preexec_fn`` always execs)."""
    found = []
    for extra in ({}, {"preexec_fn": lambda: None}):
        process = subprocess.Popen(
            [*COUNCIL, *args],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=cwd,
            **extra,  # type: ignore[call-overload]
        )
        out, err = process.communicate(timeout=patience(60))
        found.append(
            (process.returncode, out, err.replace(str(process.pid), "PID"), _forked(process))
        )
    return found


@pytest.mark.parametrize(
    "args",
    [["--version"], ["--help"], ["run", "--help"], ["status", "missing.yaml"], ["nonsense"]],
)
def test_a_forked_command_answers_as_the_executed_one(tmp_path: Path, args: list[str]) -> None:
    forked, executed = _both(args, tmp_path, {**ENV, "COLUMNS": "64", "NO_COLOR": "1"})
    assert forked[3] and not executed[3]
    assert forked[:3] == executed[:3]


def test_a_forked_command_is_a_process_of_its_own_that_signals_reach(tmp_path: Path) -> None:
    (tmp_path / "wait.yaml").write_text("{")
    process = subprocess.Popen(
        [*COUNCIL, "status", "wait.yaml"],
        start_new_session=True,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=ENV,
        cwd=tmp_path,
    )
    try:
        assert _forked(process)
        # Set up before the start returns, as exec's: its group, directory and command line.
        os.killpg(process.pid, signal.SIGSTOP)
        line = Path(f"/proc/{process.pid}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        assert line == [os.fsencode(a) for a in (*COUNCIL, "status", "wait.yaml")]
        assert Path(os.readlink(f"/proc/{process.pid}/cwd")) == tmp_path
        with pytest.raises(subprocess.TimeoutExpired):
            process.wait(timeout=0.2)  # stopped: not ended
        os.kill(process.pid, signal.SIGKILL)
        assert process.wait(timeout=patience(30)) == -signal.SIGKILL
    finally:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_a_directory_that_is_not_there_is_refused_as_exec_refuses_it(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError):
        subprocess.Popen([*COUNCIL, "--version"], cwd=tmp_path / "gone", env=ENV)


def test_a_start_the_fork_cannot_make_the_same_goes_through_exec() -> None:
    spare = os.dup(0)
    starts: list[dict[str, Any]] = [
        {"preexec_fn": lambda: None},
        {"pass_fds": (spare,)},
        {"env": {**ENV, "PYTHONHASHSEED": "7"}},  # read by the interpreter as it starts
        {"env": {**ENV, "LANG": "C"}},
    ]
    try:
        for kwargs in starts:
            process = subprocess.Popen(
                [*COUNCIL, "--version"], stdout=subprocess.PIPE, text=True, **kwargs
            )
            assert not _forked(process), kwargs
            out, _ = process.communicate(timeout=patience(60))
            assert out.startswith("council ")
    finally:
        os.close(spare)
