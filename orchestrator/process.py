"""Processes: the one module that starts them.

``run_command`` runs a short command to completion (worktree setup commands, verify commands):
an argument list, never a shell; stdin closed; its own process group, so a timeout or a
cancellation takes down everything it started, grandchildren included (SIGTERM, a grace
period, then SIGKILL to the group); output captured up to a bound, keeping the tail, which is
where errors are.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.abc

from orchestrator.errors import RunError

__all__ = ["CommandResult", "kill_group", "run_command"]

_OUTPUT_LIMIT = 256 * 1024
_GRACE = 5.0


@dataclass(frozen=True)
class CommandResult:
    argv: list[str]
    returncode: int | None  # None when it was killed for its timeout
    output: str  # stdout and stderr interleaved, the last 256 KiB
    timed_out: bool
    seconds: float

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and not self.timed_out


async def run_command(
    argv: Sequence[str],
    *,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float | None = None,
    grace: float = _GRACE,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` to completion or until ``timeout`` seconds pass."""
    if not argv:
        raise RunError("cannot run an empty command")
    started = time.monotonic()
    try:
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=dict(env) if env is not None else None,
            start_new_session=True,
        )
    except FileNotFoundError:
        raise RunError(f"{argv[0]}: command not found (cwd {cwd})") from None
    except PermissionError:
        raise RunError(f"{argv[0]}: permission denied") from None
    tail = bytearray()
    timed_out = False
    try:
        with anyio.move_on_after(timeout) as scope:
            assert process.stdout is not None
            async for chunk in process.stdout:
                tail += chunk
                if len(tail) > _OUTPUT_LIMIT:
                    del tail[: len(tail) - _OUTPUT_LIMIT]
            await process.wait()
            # Nothing it started may outlive it (a daemon a setup script forked, say).
            _signal_group(process.pid, signal.SIGKILL)
        if scope.cancelled_caught:
            timed_out = True
            with anyio.CancelScope(shield=True):
                await kill_group(process, grace)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await kill_group(process, grace)
        raise
    finally:
        with contextlib.suppress(Exception):
            await process.aclose()
    return CommandResult(
        argv=list(argv),
        returncode=None if timed_out else process.returncode,
        output=tail.decode("utf-8", "replace"),
        timed_out=timed_out,
        seconds=time.monotonic() - started,
    )


async def kill_group(process: anyio.abc.Process, grace: float = _GRACE) -> None:
    """SIGTERM the process's group, wait up to ``grace`` seconds, then SIGKILL it."""
    pgid = process.pid  # start_new_session made the child its group's leader
    _signal_group(pgid, signal.SIGTERM)
    with anyio.move_on_after(grace):
        await process.wait()
    # Even when the leader exited, a child that ignored SIGTERM may live on in the group.
    _signal_group(pgid, signal.SIGKILL)
    await process.wait()


def _signal_group(pgid: int, sig: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, sig)
