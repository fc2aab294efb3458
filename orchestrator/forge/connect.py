"""The forge a run config's ``forge:`` section names, connected: each setting it leaves out
found as ``identity`` says (the repository and the API from the origin remote, the token from
the environment or the GitHub CLI)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import anyio

from orchestrator.config.forge import ForgeConfig
from orchestrator.forge.github import GitHubForge
from orchestrator.forge.identity import api_url_for, origin_repo, resolve_token
from orchestrator.forge.pacing import Pacing

__all__ = ["connect"]


async def connect(
    config: ForgeConfig | None,
    repo: Path,
    environ: Mapping[str, str] | None = None,
    *,
    gh: str | None = "gh",
    pacing: Pacing | None = None,
) -> GitHubForge:
    """The forge for the git repository at ``repo`` as ``config`` (default: all defaults)
    says; ``environ`` (default: this process's) holds the token variables."""
    settings = config or ForgeConfig()
    environ = os.environ if environ is None else environ
    full_name, api_url = settings.repo, settings.api_url
    if full_name is None or api_url is None:
        remote = await anyio.to_thread.run_sync(origin_repo, repo)
        full_name = full_name or remote.full_name
        api_url = api_url or api_url_for(remote.host)
    token = await resolve_token(settings.token, environ, cwd=repo, gh=gh)
    return GitHubForge(full_name, token, api_url=api_url, pacing=pacing)
