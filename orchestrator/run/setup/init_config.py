"""``council init``'s work below the command line: find the repository and the CLIs, make the
starter config, check it as ``council config validate`` would, and write it without ever
replacing a file unless asked.

The repository is the checkout the command stands in and the base branch is the branch
checked out there (``base`` overrides it, and is required on a detached HEAD). The config is
checked before it is written, so an invalid file is never left behind.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.config.load import parse_config
from orchestrator.errors import UsageError
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.setup.cli_detect import CliState, detect_clis
from orchestrator.run.setup.repo_here import repo_here
from orchestrator.run.setup.starter_config import Starter, starter_config
from orchestrator.safety import safe_write

__all__ = ["InitPlan", "plan_init", "write_config"]


@dataclass(frozen=True)
class InitPlan:
    """What ``council init`` is about to write, and what it found."""

    path: Path  # the config file, absolute
    repo: Path
    base_branch: str
    clis: list[CliState]
    starter: Starter


async def plan_init(
    cwd: Path,
    output: Path,
    registry: AdapterRegistry,
    *,
    base: str | None = None,
    force: bool = False,
    env: Mapping[str, str] | None = None,
) -> InitPlan:
    """The starter config for the repository ``cwd`` is in, to be written at ``output``
    (refused at once when that file exists and ``force`` is not given)."""
    here = await repo_here(cwd)
    branch = base or here.branch
    if branch is None:
        raise UsageError(
            f"HEAD is detached in {here.root}: check out the branch work should land on, or "
            "name it with --base BRANCH"
        )
    path = await anyio.to_thread.run_sync(_target, cwd, output, force)
    clis = await detect_clis(registry, env)
    starter = starter_config(path.name, _repo_as_written(here.root, path.parent), branch, clis)
    # Checked as `council config validate` checks it: a starter that fails is our bug, and
    # must not reach the user's disk.
    parse_config(
        starter.text,
        source=str(path),
        base_dir=path.parent,
        options_models=registry.options_models(),
    )
    return InitPlan(path=path, repo=here.root, base_branch=branch, clis=clis, starter=starter)


def _target(cwd: Path, output: Path, force: bool) -> Path:
    path = Path(os.path.normpath(output if output.is_absolute() else cwd / output))
    if not force and os.path.lexists(path):
        raise _exists(path)
    return path


def _repo_as_written(root: Path, config_dir: Path) -> str:
    """The repository relative to the config's directory when the config is inside it (so the
    pair can move together), else absolute."""
    real = Path(os.path.realpath(config_dir))
    if real.is_relative_to(root):
        return os.path.relpath(root, real)
    return str(root)


def _exists(path: Path) -> UsageError:
    return UsageError(
        f"{path} already exists; pass --force to replace it, or --output another file"
    )


async def write_config(plan: InitPlan, *, force: bool) -> None:
    """Write the starter config; ``UsageError`` when the file exists and ``force`` is not
    given. A link at the path is replaced, never followed."""
    await anyio.to_thread.run_sync(_write, plan.path, plan.starter.text.encode(), force)


def _write(path: Path, data: bytes, force: bool) -> None:
    if not path.parent.is_dir():
        raise UsageError(f"cannot write {path}: the directory {path.parent} does not exist")
    if force:
        safe_write.write_atomic(path.parent, path, data)
        return
    try:
        # O_EXCL: created here or not at all, even when another file appears meanwhile.
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
    except FileExistsError:
        raise _exists(path) from None
    with os.fdopen(fd, "wb") as file:
        file.write(data)
