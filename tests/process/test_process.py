"""run_command: argument lists, bounded output, timeouts that take down the whole group."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import anyio
import pytest

from orchestrator.errors import RunError
from orchestrator.process.command import run_captured, run_command
from tests.support.timing import patience


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


async def test_output_and_exit_code(tmp_path: Path) -> None:
    result = await run_command(
        [
            sys.executable,
            "-c",
            "import sys; print('out'); print('err', file=sys.stderr); sys.exit(3)",
        ],
        cwd=tmp_path,
    )
    assert result.returncode == 3 and not result.ok and not result.timed_out
    assert "out" in result.output and "err" in result.output


async def test_no_shell_interpretation(tmp_path: Path) -> None:
    result = await run_command(["echo", "$HOME; rm -rf /"], cwd=tmp_path)
    assert result.ok and result.output == "$HOME; rm -rf /\n"


async def test_stdin_is_closed(tmp_path: Path) -> None:
    result = await run_command(
        [sys.executable, "-c", "import sys; print(repr(sys.stdin.read()))"], cwd=tmp_path
    )
    assert result.output.strip() == "''"


async def test_timeout_kills_the_group_even_a_term_ignoring_child(tmp_path: Path) -> None:
    pidfile = tmp_path / "child.pid"
    script = (
        "import os, signal, subprocess, sys, time\n"
        "child = subprocess.Popen([sys.executable, '-c', "
        "'import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)'])\n"
        f"open({str(pidfile)!r}, 'w').write(str(child.pid))\n"
        "signal.signal(signal.SIGTERM, signal.SIG_IGN)\n"
        "time.sleep(600)\n"
    )
    # Both sleep 600 s ignoring SIGTERM: a run_command that did not kill them would hang until
    # pytest's timeout, so no wall-time bound is needed to tell.
    result = await run_command([sys.executable, "-c", script], cwd=tmp_path, timeout=1.0, grace=0.5)
    assert result.timed_out and result.returncode is None
    child = int(pidfile.read_text())
    deadline = time.monotonic() + patience(5)
    while alive(child) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive(child)


async def test_output_is_bounded(tmp_path: Path) -> None:
    result = await run_command(
        [sys.executable, "-c", "import sys; sys.stdout.write('x' * 3_000_000 + 'END')"],
        cwd=tmp_path,
    )
    assert result.ok and len(result.output) <= 256 * 1024 and result.output.endswith("END")


async def test_missing_binary_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(RunError, match="no-such-binary-xyz: command not found"):
        await run_command(["no-such-binary-xyz"], cwd=tmp_path)


def test_a_captured_commands_stdin_is_dev_null_opened_once_for_all(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    opened: list[str] = []
    real_open = os.open

    def counted(path: str, flags: int, mode: int = 0o777, **kwargs: int) -> int:
        opened.append(os.fsdecode(path))
        return real_open(path, flags, mode, **kwargs)

    monkeypatch.setattr(os, "open", counted)
    env = {"PATH": os.environ.get("PATH", "")}
    code = "import sys; print(repr(sys.stdin.read()))"

    for _ in range(3):  # as a task's git commands are: one after another
        status, out, err = run_captured([sys.executable, "-c", code], env)
        assert (status, out.strip(), err) == (0, b"''", b"")  # read /dev/null: nothing

    assert os.devnull not in opened


def test_a_short_command_is_done_once_what_it_started_with_its_output_is_done() -> None:
    """``git worktree remove`` of a dirty worktree exits while the ``git status`` it started
    still runs there: what ``run_captured`` returns is after that too (the worktree is
    looked at for processes right after), and with everything either wrote."""
    env = {"PATH": os.environ.get("PATH", "")}
    script = "(sleep 0.3; echo late >&2; echo later) & echo now"
    status, out, err = run_captured(["sh", "-c", script], env)
    assert (status, out, err) == (0, b"now\nlater\n", b"late\n")


def test_a_short_command_s_large_input_and_outputs_never_wait_on_each_other() -> None:
    env = {"PATH": os.environ.get("PATH", "")}
    code = (
        "import sys; data = sys.stdin.buffer.read(); "
        "sys.stderr.buffer.write(data[::-1]); sys.stdout.buffer.write(data)"
    )
    data = bytes(range(256)) * 4096  # 1 MiB each way, far over a pipe's buffer
    status, out, err = run_captured([sys.executable, "-c", code], env, stdin=data)
    assert (status, out, err) == (0, data, data[::-1])
    with pytest.raises(FileNotFoundError):
        run_captured(["council-no-such-program"], env)


def test_a_short_command_does_not_outlive_a_caller_stopped_while_reading(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from orchestrator.process import command

    started: list[int] = []
    real_spawn = os.posix_spawn

    def spawned(*args: object, **kwargs: object) -> int:
        pid = real_spawn(*args, **kwargs)  # type: ignore[arg-type]
        started.append(pid)
        return pid

    def stopped(out: int, err: int) -> tuple[bytes, bytes]:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "posix_spawn", spawned)
    monkeypatch.setattr(command, "_drained", stopped)
    began = time.monotonic()
    with pytest.raises(KeyboardInterrupt):
        run_captured(["sleep", "30"], {"PATH": os.environ.get("PATH", "")})
    assert time.monotonic() - began < 10
    assert started and not alive(started[0])  # killed and reaped


async def test_a_short_command_gets_no_descriptor_of_the_orchestrator_but_its_three() -> None:
    """git started while a CLI's relay waits for its sandbox and the page listens: neither
    socket is git's (nor any filter's it runs); a relay's reaches its sandbox by
    ``pass_fds`` alone."""
    from orchestrator.sandbox.relay import Address, Relay
    from orchestrator.web.listen import bind

    async def nowhere(stream: object) -> None:
        return None

    relay = Relay([(Address("127.0.0.1", 9), nowhere)])
    page = bind("127.0.0.1", 0)
    try:
        held = {*relay.child_fds(), page.fileno()}
        code = "import os; print(' '.join(sorted(os.listdir('/proc/self/fd'))))"
        env = {"PATH": os.environ.get("PATH", "")}
        argv = [sys.executable, "-S", "-c", code]
        status, out, _ = await anyio.to_thread.run_sync(run_captured, argv, env)
        assert status == 0
        seen = {int(fd) for fd in out.split()}
        assert not seen & held, (seen, held)
        assert seen - {0, 1, 2} <= {3}  # the listing's own descriptor
    finally:
        page.close()
        await relay.close()


def test_a_program_is_looked_for_once_per_process_and_path(tmp_path: Path) -> None:
    from orchestrator.process.env import program

    first, second = tmp_path / "first", tmp_path / "second"
    for directory in (first, second):
        directory.mkdir()
        tool = directory / "council-probe-tool"
        tool.write_text("#!/bin/sh\n")
        tool.chmod(0o755)
    assert program("council-probe-tool", str(first)) == str(first / "council-probe-tool")
    (first / "council-probe-tool").unlink()
    # Gone mid-run: the answer of this process stands (how its CLIs are confined stays put).
    assert program("council-probe-tool", str(first)) == str(first / "council-probe-tool")
    # Another PATH is another question.
    assert program("council-probe-tool", str(second)) == str(second / "council-probe-tool")
    assert program("council-probe-tool", str(tmp_path)) is None
