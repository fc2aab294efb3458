"""The forge a run config's ``forge:`` section names, connected: each setting it leaves out
found as ``identity`` says (the repository and the API from the origin remote, the token from
the environment or the GitHub CLI). ``github`` is built in; any other type is a plugin's
(``register_forges``, ``orchestrator.plugins.forge_types``), whose factory gets the section as
it is."""

from __future__ import annotations

import inspect
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

import anyio

from orchestrator.config.forge import ForgeConfig
from orchestrator.errors import PluginError, UsageError
from orchestrator.forge.base import Forge
from orchestrator.forge.identity import api_url_for, origin_repo, resolve_token
from orchestrator.forge.pacing import Pacing
from orchestrator.plugins.forge_types import ForgeTypes

if TYPE_CHECKING:
    from orchestrator.forge.github import GitHubForge

__all__ = ["connect"]

# What a plugin's forge must answer to be used (the protocol's members).
_MEMBERS = tuple(name for name in vars(Forge) if not name.startswith("_") and name not in ("repo",))


async def connect(
    config: ForgeConfig | None,
    repo: Path,
    environ: Mapping[str, str] | None = None,
    *,
    gh: str | None = "gh",
    pacing: Pacing | None = None,
    types: ForgeTypes | None = None,
) -> Forge:
    """The forge for the git repository at ``repo`` as ``config`` (default: all defaults)
    says; ``environ`` (default: this process's) holds the token variables; ``types`` the forge
    types plugins registered (``PluginHost.forges``)."""
    settings = config or ForgeConfig()
    environ = os.environ if environ is None else environ
    if settings.type != "github":
        return await _plugin_forge(settings, repo, environ, types or ForgeTypes())
    full_name, api_url = settings.repo, settings.api_url
    if full_name is None or api_url is None:
        remote = await anyio.to_thread.run_sync(origin_repo, repo)
        full_name = full_name or remote.full_name
        api_url = api_url or api_url_for(remote.host)
    token = await resolve_token(settings.token, environ, cwd=repo, gh=gh)
    return github_forge()(full_name, token, api_url=api_url, pacing=pacing)


GITHUB_EXTRA = "pip install 'cli-council[github]'"


def github_forge() -> type[GitHubForge]:
    """``GitHubForge``, imported now; a ``UsageError`` naming the extra to install when its
    client library (githubkit, the ``github`` extra) is not there."""
    try:
        from orchestrator.forge.github import GitHubForge
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("githubkit", "githubkit_schemas", "hishel"):
            raise UsageError(
                f"the GitHub forge needs githubkit, which the `github` extra installs: "
                f"{GITHUB_EXTRA}"
            ) from None
        raise
    return GitHubForge


async def _plugin_forge(
    settings: ForgeConfig, repo: Path, environ: Mapping[str, str], types: ForgeTypes
) -> Forge:
    factory = types.factory(settings.type)
    made = factory(settings, repo, environ)
    if inspect.isawaitable(made):
        made = await made
    missing = [name for name in _MEMBERS if not callable(getattr(made, name, None))]
    if missing or not isinstance(getattr(made, "repo", None), str):
        lacks = ", ".join(missing or ["repo"])
        raise PluginError(
            f"forge type {settings.type!r} of {types.plugin_of(settings.type)} made "
            f"{type(made).__name__}, which is not a Forge (it lacks {lacks})"
        )
    forge: Forge = made
    return forge
