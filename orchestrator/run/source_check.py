"""Whether a run config's forge is one this installation has (``forge.type``: ``github`` or a
plugin's), and whether its ``sources:`` can reach a forge (``config validate``, at the line of
``sources:``): a ``forge:`` section that names the repository, a plugin's forge type (its
factory finds its own), or an ``origin`` remote whose URL names a repository on a forge."""

from __future__ import annotations

import os
from pathlib import Path

import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.errors import UsageError
from orchestrator.forge.identity import origin_repo
from orchestrator.plugins.forge_types import ForgeTypes
from orchestrator.run.preflight import Finding

__all__ = ["forge_findings", "source_finding"]


async def forge_findings(config: RunConfig, forges: ForgeTypes) -> list[Finding]:
    """A ``forge.type`` no plugin provides, and ``source_finding``."""
    found: list[Finding] = []
    if config.forge is not None and config.forge.type not in forges:
        try:
            forges.factory(config.forge.type)
        except UsageError as exc:
            found.append(Finding(("forge", "type"), str(exc)))
        return found
    source = await source_finding(config)
    return [source] if source is not None else []


async def source_finding(config: RunConfig) -> Finding | None:
    """Why the config's ``sources:`` has no forge to read, or None."""
    if not config.sources:
        return None
    forge = config.forge
    if forge is not None and (forge.repo is not None or forge.type != "github"):
        return None
    try:
        await anyio.to_thread.run_sync(_origin, config.repo)
    except UsageError as exc:
        return Finding(
            ("sources",),
            f"sources: need a forge to read issues from, and there is none: {exc}. Add a "
            "`forge:` section (repo: OWNER/NAME, with api_url and token as needed), or an "
            "origin remote on the forge",
        )
    return None


def _origin(repo: Path) -> None:
    if os.path.lexists(repo / ".git"):  # no repository here: ``repository_finding`` says so
        origin_repo(repo)
