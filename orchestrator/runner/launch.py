"""Starting a CLI for the runner: a failed start becomes an error naming the adapter and what
is wrong (not installed, not executable, no working directory)."""

from __future__ import annotations

from pathlib import Path

import anyio.abc

from orchestrator.adapter import Adapter, CommandSpec
from orchestrator.errors import AdapterError, RunError
from orchestrator.process.launch import spawn_piped

__all__ = ["spawn_cli"]


async def spawn_cli(
    adapter: Adapter, spec: CommandSpec, cwd: Path, env: dict[str, str]
) -> tuple[anyio.abc.Process, int, int]:
    """Start the adapter's command; the process and the read ends of its stdout and stderr."""
    try:
        return await spawn_piped(spec.argv, cwd, env, stdin=spec.stdin is not None)
    except OSError as exc:
        raise _start_error(exc, adapter, spec.argv[0], cwd) from None


def _start_error(error: OSError, adapter: Adapter, binary: str, cwd: Path) -> Exception:
    if isinstance(error, FileNotFoundError | NotADirectoryError) and not Path(cwd).is_dir():
        return RunError(f"working directory {cwd} does not exist")
    if isinstance(error, FileNotFoundError):
        return AdapterError(
            f"adapter {adapter.name!r}: {binary!r} not found (is the CLI installed and on PATH?)"
        )
    if isinstance(error, PermissionError):
        return AdapterError(f"adapter {adapter.name!r}: {binary!r}: permission denied")
    return RunError(f"adapter {adapter.name!r}: cannot start {binary!r}: {error}")
