"""Starting a long-running child (a CLI) leading its own process group, its stdout and stderr
on non-blocking pipes the caller reads; stdout gets a bigger pipe than the default (fewer
wake-ups under a flood). ``pass_fds``: descriptors the child keeps under the same numbers (a
sandbox's own pipes, ``orchestrator.sandbox.network``).

``spawn_helper`` starts a quiet helper beside such a child (the sandbox's network helper): its
output discarded, its own process group, the descriptors it is handed kept under their numbers.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.abc

from orchestrator.process.started import forget, started, starting

__all__ = ["helper_ended", "spawn_helper", "spawn_logged", "spawn_piped"]

_PIPE_SIZE = 1024 * 1024
# One descriptor of /dev/null for every start, opened with the module: a start runs on the
# event loop, which must not open files (passing ``subprocess.DEVNULL`` opens it each time).
_DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)
_DEVNULL_OUT = os.open(os.devnull, os.O_WRONLY | os.O_CLOEXEC)
_F_SETPIPE_SZ: int | None = getattr(fcntl, "F_SETPIPE_SZ", None)  # Linux only


async def spawn_piped(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    *,
    stdin: bool,
    pass_fds: Sequence[int] = (),
) -> tuple[anyio.abc.Process, int, int]:
    """Start ``argv`` leading a new process group; the read ends of its stdout and stderr.

    A failed start raises the ``OSError`` of ``exec``, with every descriptor closed."""
    out_read, out_write = _pipe(_PIPE_SIZE)
    err_read, err_write = _pipe(None)  # stderr is rarely a flood: the default size will do
    try:
        process = await anyio.open_process(
            list(argv),
            stdin=subprocess.PIPE if stdin else _DEVNULL,
            stdout=out_write,
            stderr=err_write,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
    except BaseException:
        os.close(out_read)
        os.close(err_read)
        raise
    finally:
        # The child holds its own copies; ours must go, or the pipes never reach end of file.
        os.close(out_write)
        os.close(err_write)
    return process, out_read, err_read


async def spawn_helper(
    argv: Sequence[str], env: Mapping[str, str], pass_fds: Sequence[int]
) -> anyio.abc.Process:
    """Start ``argv`` (in ``/``, its output discarded, leading its own process group) keeping
    ``pass_fds`` open under their numbers. A failed start raises the ``OSError`` of ``exec``.
    It is one of the orchestrator's own processes (``process.started``), never taken for a
    CLI's stray, until ``helper_ended``."""
    return await _own(argv, Path("/"), env, _DEVNULL, _DEVNULL_OUT, pass_fds)


async def spawn_logged(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str], out: int, *, stdin: bool = False
) -> anyio.abc.Process:
    """Start ``argv`` leading its own process group, its stdout and stderr written to ``out``
    (a descriptor the caller still closes: a log file, a pipe), its stdin ``/dev/null`` or,
    with ``stdin``, a pipe the caller holds (``process.stdin``: a session's services,
    ``orchestrator.services``). One of the orchestrator's own processes until
    ``helper_ended``. A failed start raises the ``OSError`` of ``exec``."""
    return await _own(argv, cwd, env, subprocess.PIPE if stdin else _DEVNULL, out, ())


async def _own(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str],
    stdin: int,
    out: int,
    pass_fds: Sequence[int],
) -> anyio.abc.Process:
    """One of the orchestrator's own processes started (``process.started``)."""
    with starting():
        process = await anyio.open_process(
            list(argv),
            stdin=stdin,
            stdout=out,
            stderr=out,
            cwd=cwd,
            env=dict(env),
            start_new_session=True,
            pass_fds=tuple(pass_fds),
        )
        started(process.pid)
    return process


def helper_ended(process: anyio.abc.Process) -> None:
    """``process`` (``spawn_helper``'s) was waited for."""
    forget(process.pid)


def _pipe(size: int | None) -> tuple[int, int]:
    read, write = os.pipe()  # both ends close-on-exec: only the dup2'd copies reach the child
    if size is not None and _F_SETPIPE_SZ is not None:
        # A bigger pipe means fewer wake-ups under a flood; refused above pipe-max-size.
        with contextlib.suppress(OSError):
            fcntl.fcntl(read, _F_SETPIPE_SZ, size)
    os.set_blocking(read, False)
    return read, write
