"""What version of a CLI is installed: the first line its version command prints that looks
like a version (codex, with HOME under the temp directory, prints a WARNING line first)."""

from __future__ import annotations

import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.adapter import Adapter
from orchestrator.errors import RunError
from orchestrator.process.command import run_command
from orchestrator.process.env import child_env, prepare_home

__all__ = ["VERSION_TIMEOUT", "VersionAnswer", "cli_version", "version_answer", "version_line"]

# A node CLI starting cold on a loaded machine took 11 s (gemini 0.61.0 on 2 busy cores).
VERSION_TIMEOUT = 30.0
# Three numbers: "1.2" can be anything in a warning (codex prints one first when HOME is
# under the temp directory), and every CLI measured gives major.minor.patch.
_VERSION = re.compile(r"(?<![\w.])v?\d+\.\d+\.\d+\b")
_WARNING = re.compile(r"^(?:warning|error|note)\b", re.IGNORECASE)


@dataclass(frozen=True)
class VersionAnswer:
    """What the version command said: the version, or why there is none."""

    version: str | None
    timed_out_after: float | None = None  # the limit, when the command did not answer in it

    def failure(self, command: str) -> str:
        """Why ``command`` gave no version, for a check's detail."""
        if self.timed_out_after is not None:
            return f"{command!r} timed out after {self.timed_out_after:g} s"
        return f"{command!r} failed"


async def cli_version(adapter: Adapter, *, timeout: float = VERSION_TIMEOUT) -> str | None:
    """The version ``adapter.version_command()`` prints, or None if it fails or hangs."""
    return (await version_answer(adapter, timeout=timeout)).version


async def version_answer(adapter: Adapter, *, timeout: float = VERSION_TIMEOUT) -> VersionAnswer:
    """Run ``adapter.version_command()`` with the allow-listed environment and a throwaway
    HOME, like a real run, and read its version."""
    argv = adapter.version_command()
    home = Path(await anyio.to_thread.run_sync(tempfile.mkdtemp, None, "council-version-"))
    try:
        await anyio.to_thread.run_sync(prepare_home, home, {})
        env, _ = child_env(adapter.env_names(), {}, {}, home)
        result = await run_command(argv, cwd=home, env=env, timeout=timeout, grace=1.0)
    except RunError:
        return VersionAnswer(None)
    finally:
        await anyio.to_thread.run_sync(shutil.rmtree, home, True)
    if result.timed_out:
        return VersionAnswer(None, timed_out_after=timeout)
    return VersionAnswer(version_line(result.output) if result.ok else None)


def version_line(output: str) -> str | None:
    """The first line of ``output`` that looks like a version ("codex-cli 0.169.0",
    "2.1.330 (Claude Code)"), else its first line; None when it printed nothing."""
    lines = [line.strip()[:200] for line in output.splitlines() if line.strip()]
    versions = (line for line in lines if _VERSION.search(line) and not _WARNING.match(line))
    return next(versions, lines[0] if lines else None)
