"""``council doctor``'s whole checklist, offline: git, the repository, each CLI, the store.

With a run config, the repository and base branch are the config's, the CLIs are the adapters
it declares (with their options, ``executable`` and credential settings), and the store is its
``state:``. Without one, the repository is the checkout the command stands in (its current
branch the base), the CLIs are those found on this machine, and the store is the default file
store.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.config.run import RunConfig
from orchestrator.errors import AdapterError, UnusableRepository
from orchestrator.plugins.registry import AdapterRegistry
from orchestrator.run.doctor.checklist import Check
from orchestrator.run.doctor.cli_checks import cli_checks, no_cli_found
from orchestrator.run.doctor.git_checks import git_check
from orchestrator.run.doctor.repository_checks import repository_checks
from orchestrator.run.doctor.sandbox_checks import sandbox_checks
from orchestrator.run.doctor.store_checks import (
    file_store_checks,
    postgres_check,
    postgres_health_check,
)
from orchestrator.run.setup.cli_detect import CliState, cli_state, detect_clis
from orchestrator.run.setup.repo_here import repo_here
from orchestrator.worktrees.layout import COUNCIL_DIR

__all__ = ["Examination", "examine"]


@dataclass
class Examination:
    checks: list[Check] = field(default_factory=list)
    clis: list[CliState] = field(default_factory=list)  # the CLIs looked at


async def examine(
    config: RunConfig | None,
    registry: AdapterRegistry,
    *,
    cwd: Path,
    source: str | None = None,
    env: Mapping[str, str] | None = None,
) -> Examination:
    """Every offline check; ``source`` names the run config file ``config`` came from."""
    found = Examination(checks=[await git_check(), *await sandbox_checks(config)])
    if config is not None:
        found.checks += await repository_checks(
            config.repo, config.base_branch, sample=config.sample_repo, source=source
        )
        await _configured_clis(found, config, registry, env)
        if config.state.backend == "postgresql":
            found.checks.append(await postgres_check(config.state, source))
            pg_health = await postgres_health_check(config.state)
            if pg_health is not None:
                found.checks.append(pg_health)
        if config.repo.is_dir():
            found.checks += await file_store_checks(
                config.state_dir, config.repo, config.state_anchor
            )
        return found
    repo = await _repository_here(found, cwd)
    clis = [cli for cli in await detect_clis(registry, env) if cli.found]
    found.clis = clis
    for cli in clis:
        found.checks += cli_checks(cli, configured=False)
    if not clis:
        found.checks.append(no_cli_found())
    if repo is not None:
        state_dir = repo / COUNCIL_DIR / "state"
        found.checks += await file_store_checks(state_dir, repo, repo)
    return found


async def _repository_here(found: Examination, cwd: Path) -> Path | None:
    try:
        here = await repo_here(cwd)
    except UnusableRepository as exc:
        fix = "run council doctor in your repository, or name a run config: council doctor FILE"
        found.checks.append(Check.fail("repository", "repository", str(exc).split(";")[0], fix))
        return None
    if here.branch is None:
        found.checks.append(Check.ok("repository", "repository", f"{here.root}: a git checkout"))
        detail = "HEAD is detached: no current branch to use as the base"
        fix = "check out the branch work should land on, or name a run config that sets it"
        found.checks.append(Check.fail("repository", "base branch", detail, fix))
    else:
        found.checks += await repository_checks(here.root, here.branch)
    return here.root


async def _configured_clis(
    found: Examination,
    config: RunConfig,
    registry: AdapterRegistry,
    env: Mapping[str, str] | None,
) -> None:
    if not config.adapters:
        detail = "the run config declares no adapter"
        fix = "declare the CLIs to run under adapters: (`council init` writes a starter config)"
        found.checks.append(Check.fail("cli", "adapters", detail, fix))
    for name, settings in config.adapters.items():
        try:
            adapter = registry.create(name, settings)
        except AdapterError as exc:
            fix = f"fix adapters.{name} (`council adapters list` shows what is installed)"
            found.checks.append(Check.fail("cli", name, str(exc), fix))
            continue
        cli = await cli_state(name, adapter, settings, env)
        found.clis.append(cli)
        found.checks += cli_checks(cli, configured=True)
