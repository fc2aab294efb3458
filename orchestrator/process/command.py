"""Short commands run to completion: worktree setup commands, verify commands, version checks.

``run_command`` runs an argument list, never a shell; stdin closed; the allow-listed environment
of ``orchestrator.process.env.command_env`` unless the caller passes one (never this process's
whole environment, which holds its keys); its own process group, so a timeout or a
cancellation takes down everything it started, grandchildren included (on a timeout SIGTERM, a
grace period, then SIGKILL to the group; a cancelled caller SIGKILLs at once); output captured
up to a bound, keeping the tail, which is where errors are. Every process started here carries
the orchestrator's ``procid.MARKER_ENV`` (``marked``), which finds an orphan whose pid was never
recorded (``orchestrator.runner.orphans``). A caller may keep descriptors open in the command
(``pass_fds``) and be told its pid once it started, before its output is read (``attach``: a
sandbox's own network given to it); an ``attach`` that raises stops it.
"""

from __future__ import annotations

import contextlib
import errno
import os
import select
import signal
import subprocess
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import anyio
import anyio.abc

from orchestrator.errors import RunError
from orchestrator.process import limits, procid
from orchestrator.process.env import command_env, program
from orchestrator.process.started import forget, started, starting
from orchestrator.process.stop import DEFAULT_GRACE, kill_group, reap_group, signal_group
from orchestrator.process.tree import Family

__all__ = [
    "OUTPUT_LIMIT",
    "CommandResult",
    "Piped",
    "marked",
    "run_captured",
    "run_command",
    "run_short",
    "start_piped",
]

OUTPUT_LIMIT = 256 * 1024
# One descriptor of /dev/null for every git command's stdin, opened with the module
# (``subprocess.DEVNULL`` opens and closes it again for each of a task's git processes).
_DEVNULL = os.open(os.devnull, os.O_RDONLY | os.O_CLOEXEC)


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
    grace: float = DEFAULT_GRACE,
    mark: bool = True,
    pass_fds: Sequence[int] = (),
    attach: Callable[[int], Awaitable[None]] | None = None,
) -> CommandResult:
    """Run ``argv`` in ``cwd`` to completion or until ``timeout`` seconds pass.

    ``mark=False`` leaves out the orchestrator's marker: for a command that starts a service
    meant to outlive every run (a local database server), which no successor may take for an
    orphan of this process. ``pass_fds`` stay open in it; ``attach`` is awaited with its pid
    once it started (see the module doc)."""
    if not argv:
        raise RunError("cannot run an empty command")
    began = time.monotonic()
    try:
        with starting():
            process = await _open_command(argv, cwd, env, mark, pass_fds)
            started(process.pid)
    except FileNotFoundError:
        raise RunError(f"{argv[0]}: command not found (cwd {cwd})") from None
    except PermissionError:
        raise RunError(f"{argv[0]}: permission denied") from None
    tail = bytearray()
    timed_out = False
    try:
        if attach is not None:
            await attach(process.pid)
        with anyio.move_on_after(timeout) as scope:
            assert process.stdout is not None
            async for chunk in process.stdout:
                tail += chunk
                if len(tail) > OUTPUT_LIMIT:
                    del tail[: len(tail) - OUTPUT_LIMIT]
            await process.wait()
            # Nothing it started may outlive it (a daemon a setup script forked, say).
            signal_group(process.pid, signal.SIGKILL)
            await anyio.to_thread.run_sync(reap_group, process.pid)
        if scope.cancelled_caught:
            timed_out = True
            with anyio.CancelScope(shield=True):
                await kill_group(process, Family(process.pid), grace)
    except BaseException:
        with anyio.CancelScope(shield=True):
            await kill_group(process, Family(process.pid), 0)  # the caller stops now: no grace
        raise
    finally:
        forget(process.pid)
        limits.ended(argv)  # its cgroup, if it had one, is the next launch's
        with contextlib.suppress(Exception):
            await process.aclose()
    return CommandResult(
        argv=list(argv),
        returncode=None if timed_out else process.returncode,
        output=tail.decode("utf-8", "replace"),
        timed_out=timed_out,
        seconds=time.monotonic() - began,
    )


async def _open_command(
    argv: Sequence[str],
    cwd: Path,
    env: Mapping[str, str] | None,
    mark: bool,
    pass_fds: Sequence[int] = (),
) -> anyio.abc.Process:
    given = command_env()[0] if env is None else dict(env)
    return await anyio.open_process(
        list(argv),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=marked(given) if mark else given,
        start_new_session=True,
        pass_fds=tuple(pass_fds),
    )


def run_captured(
    argv: Sequence[str], env: Mapping[str, str], stdin: bytes | None = None
) -> tuple[int, bytes, bytes]:
    """Run a short command now, in this thread: its exit code, stdout and stderr.

    For git (``orchestrator.git.repo``), whose commands are short and whose callers are
    already in a worker thread: stdin is ``stdin`` (``/dev/null`` when None), and ``env`` is the
    child's whole environment, exactly (nothing of this process's own is added to it). A binary
    that is not there raises ``FileNotFoundError``.

    Started with ``posix_spawn`` (``_spawned``) rather than ``subprocess``, which costs the
    calling thread more than twice the CPU a git process needs from it (its pipes, its
    selector loop, its Python-side bookkeeping; a run starts eleven git processes a task).
    It runs where this process does (``posix_spawn`` takes no working directory before Python
    3.13): git's callers give ``-C``. Where the system lacks ``pipe2`` or ``memfd`` (macOS),
    ``subprocess``."""
    if not _SPAWNS:
        done = subprocess.run(
            list(argv),
            input=stdin,
            stdin=_DEVNULL if stdin is None else None,
            capture_output=True,
            env=dict(env),
            check=False,
        )
        return done.returncode, done.stdout, done.stderr
    return _spawned(list(argv), env, stdin)


_SPAWNS = all(hasattr(os, name) for name in ("posix_spawn", "pipe2", "memfd_create"))

# Signals this process ignores or may block, which a child would otherwise keep across its
# exec (``subprocess`` sets them back to their defaults in the child, ``restore_signals``).
_DEFAULT_IN_CHILD = tuple(
    getattr(signal, name) for name in ("SIGPIPE", "SIGXFSZ", "SIGXFZ") if hasattr(signal, name)
)


def _spawned(
    argv: list[str], env: Mapping[str, str], stdin: bytes | None
) -> tuple[int, bytes, bytes]:
    """``argv`` run to its end by ``posix_spawn``: stdout and stderr read from two pipes as
    they come, until both are closed, so a command is done only once everything it started
    that holds them is too (``git worktree remove`` on a dirty worktree exits while the
    ``git status`` it started still runs inside that worktree); stdin, when given, is a
    memory file (``memfd``: no inode of the filesystem, nothing to write while reading). The
    child gets no descriptor of this process but those three: every other one is
    close-on-exec, as Python opens them (PEP 446), and the signals ``subprocess`` resets are
    reset."""
    executable = argv[0] if os.sep in argv[0] else program(argv[0], env.get("PATH", os.defpath))
    if executable is None:
        raise FileNotFoundError(errno.ENOENT, f"No such file or directory: {argv[0]!r}")
    given = _DEVNULL
    opened: list[int] = []
    try:
        if stdin is not None:
            given = os.memfd_create("council-stdin", os.MFD_CLOEXEC)
            opened.append(given)
            _write_all(given, stdin)
            os.lseek(given, 0, os.SEEK_SET)
        out_read, out_write = os.pipe2(os.O_CLOEXEC)
        opened += (out_read, out_write)
        err_read, err_write = os.pipe2(os.O_CLOEXEC)
        opened += (err_read, err_write)
        pid = os.posix_spawn(
            executable,
            argv,
            env,
            file_actions=[
                (os.POSIX_SPAWN_DUP2, given, 0),
                (os.POSIX_SPAWN_DUP2, out_write, 1),
                (os.POSIX_SPAWN_DUP2, err_write, 2),
            ],
            setsigdef=_DEFAULT_IN_CHILD,
            setsigmask=(),
        )
        for fd in (out_write, err_write):
            opened.remove(fd)
            os.close(fd)
        try:
            out, err = _drained(out_read, err_read)
        except BaseException:  # as ``subprocess.run``: the command does not outlive its caller
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            raise
        _, status = os.waitpid(pid, 0)
        return os.waitstatus_to_exitcode(status), out, err
    finally:
        for fd in opened:
            os.close(fd)


def _drained(out: int, err: int) -> tuple[bytes, bytes]:
    """Everything written to the pipes ``out`` and ``err`` until each is closed."""
    chunks: dict[int, list[bytes]] = {out: [], err: []}
    poller = select.poll()
    for fd in chunks:
        poller.register(fd, select.POLLIN)
    left = len(chunks)
    while left:
        for fd, _ in poller.poll():
            chunk = os.read(fd, 1 << 16)
            if chunk:
                chunks[fd].append(chunk)
            else:
                poller.unregister(fd)
                left -= 1
    return b"".join(chunks[out]), b"".join(chunks[err])


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


Piped = subprocess.Popen[bytes]
"""A command started by ``start_piped``."""


def start_piped(argv: Sequence[str], env: Mapping[str, str], stderr: int | IO[bytes]) -> Piped:
    """Start a command whose stdin and stdout are pipes, for a stream too large to hold at
    once (git's ``cat-file --batch`` of a landing's objects, read as it comes); ``env`` is its
    whole environment, exactly, as for ``run_captured``. The caller writes, reads, waits for it
    and kills it. A binary that is not there raises ``FileNotFoundError``."""
    return subprocess.Popen(
        list(argv), stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=stderr, env=dict(env)
    )


def run_short(argv: Sequence[str], *, cwd: Path, timeout: float) -> CommandResult:
    """``run_command`` for a short probe, in this thread (blocking: a worker thread's), so
    the event loop opens nothing to start it: killed once ``timeout`` passes. For a program
    that starts nothing meant to outlive it (``bwrap --unshare-pid``: its namespace dies with
    it)."""
    began = time.monotonic()
    try:
        done = subprocess.run(
            list(argv),
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=marked(command_env()[0]),
            timeout=timeout,
            check=False,
        )
    except FileNotFoundError:
        raise RunError(f"{argv[0]}: command not found (cwd {cwd})") from None
    except PermissionError:
        raise RunError(f"{argv[0]}: permission denied") from None
    except subprocess.TimeoutExpired as exc:
        output = exc.output if isinstance(exc.output, bytes) else b""
        return CommandResult(
            list(argv), None, output[-OUTPUT_LIMIT:].decode("utf-8", "replace"), True, timeout
        )
    return CommandResult(
        argv=list(argv),
        returncode=done.returncode,
        output=done.stdout[-OUTPUT_LIMIT:].decode("utf-8", "replace"),
        timed_out=False,
        seconds=time.monotonic() - began,
    )


def marked(env: Mapping[str, str]) -> dict[str, str]:
    """``env`` with this orchestrator's marker, which its successor finds orphans by."""
    return {**env, procid.MARKER_ENV: procid.current().marker()}
