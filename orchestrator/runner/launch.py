"""Starting a CLI for the runner: a failed start becomes an error naming the adapter and what
is wrong (not installed, not executable, no working directory, a command too long to start).

A command too long for ``exec`` (``E2BIG``: a prompt over what one argument may hold, say) is
refused before anything starts, and should ``exec`` refuse one anyway, that too is an
``AdapterError``: the same command would be refused again, so the phase fails for good instead
of being retried as a crash."""

from __future__ import annotations

import errno
from collections.abc import Sequence
from pathlib import Path

import anyio.abc

from orchestrator.adapter import Adapter, CommandSpec
from orchestrator.adapter.arg_limits import command_too_long
from orchestrator.errors import AdapterError, RunError
from orchestrator.process.launch import spawn_piped

__all__ = ["not_found", "spawn_cli"]


async def spawn_cli(
    adapter: Adapter,
    spec: CommandSpec,
    cwd: Path,
    env: dict[str, str],
    command: Sequence[str] | None = None,
    pass_fds: Sequence[int] = (),
) -> tuple[anyio.abc.Process, int, int]:
    """Start the adapter's command, or ``command`` (the same inside a sandbox,
    ``orchestrator.sandbox.bubblewrap``, keeping the sandbox's ``pass_fds``); the process
    and the read ends of its stdout and stderr."""
    binary = spec.argv[0]
    argv = list(spec.argv if command is None else command)
    problem = command_too_long(argv, env)
    if problem is not None:
        raise _too_long(adapter, binary, problem)
    try:
        return await spawn_piped(argv, cwd, env, stdin=spec.stdin is not None, pass_fds=pass_fds)
    except OSError as exc:
        raise _start_error(exc, adapter, binary, cwd) from None


def _too_long(adapter: Adapter, binary: str, problem: str) -> AdapterError:
    return AdapterError(
        f"adapter {adapter.name!r}: cannot start {binary!r}: its command line is too long "
        f"({problem}); an adapter must pass a prompt that long through stdin or a file"
    )


def not_found(adapter: Adapter, binary: str) -> AdapterError:
    return AdapterError(
        f"adapter {adapter.name!r}: {binary!r} not found (is the CLI installed and on PATH?)"
    )


def _start_error(error: OSError, adapter: Adapter, binary: str, cwd: Path) -> Exception:
    if isinstance(error, FileNotFoundError | NotADirectoryError) and not Path(cwd).is_dir():
        return RunError(f"working directory {cwd} does not exist")
    if isinstance(error, FileNotFoundError):
        return not_found(adapter, binary)
    if isinstance(error, PermissionError):
        return AdapterError(f"adapter {adapter.name!r}: {binary!r}: permission denied")
    if error.errno == errno.E2BIG:
        return _too_long(adapter, binary, "the system said: argument list too long")
    return RunError(f"adapter {adapter.name!r}: cannot start {binary!r}: {error}")
