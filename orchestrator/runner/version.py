"""What version of a CLI is installed: the first line its version command prints."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.adapter import Adapter
from orchestrator.errors import RunError
from orchestrator.process.command import run_command
from orchestrator.process.env import child_env, prepare_home

__all__ = ["cli_version"]


async def cli_version(adapter: Adapter, *, timeout: float = 10.0) -> str | None:
    """The first line ``adapter.version_command()`` prints, or None if it fails or hangs.

    Runs with the allow-listed environment and a throwaway HOME, like a real run.
    """
    argv = adapter.version_command()
    home = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "council-version-"))
    try:
        await anyio.to_thread.run_sync(prepare_home, home, {})
        env, _ = child_env(adapter.env_names(), {}, {}, home)
        result = await run_command(argv, cwd=home, env=env, timeout=timeout, grace=1.0)
    except RunError:
        return None
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, home, True)
    if not result.ok:
        return None
    return next((line.strip()[:200] for line in result.output.splitlines() if line.strip()), None)
