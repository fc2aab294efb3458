"""Which repository on which forge, with which token.

The token: the configured one (``${NAME}`` references expanded), else ``GH_TOKEN``, else
``GITHUB_TOKEN``, else what ``gh auth token`` prints when the GitHub CLI is installed and logged
in. Whichever it is, it is remembered as the secret ``forge.token`` (masked in everything the
orchestrator stores). The repository: the configured ``owner/name``, else the one the ``origin``
remote's URL names (``https://host/owner/name(.git)``, ``ssh://git@host[:port]/owner/name``,
``git@host:owner/name``), and the API beside it (``https://api.github.com`` for github.com,
``https://HOST/api/v3`` for GitHub Enterprise Server).
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.env_refs import UnsetVariable, expand
from orchestrator.errors import ForgeAuthError, GitError, UsageError
from orchestrator.git.repo import Git
from orchestrator.process.command import run_command
from orchestrator.process.env import command_env
from orchestrator.safety import secret_mask

__all__ = [
    "TOKEN_NAME",
    "RemoteRepo",
    "api_url_for",
    "origin_repo",
    "parse_remote_url",
    "resolve_token",
]

TOKEN_NAME = "forge.token"  # noqa: S105 - the secret's name, not a secret
_GH_TIMEOUT = 15.0
_SCP_FORM = re.compile(r"^(?:[\w.-]+@)?(?P<host>[\w.-]+):(?P<path>[^/].*)$")
_URL_FORM = re.compile(
    r"^(?:https?|ssh|git)://(?:[^@/]+@)?(?P<host>[\w.-]+)(?::\d+)?/(?P<path>.+)$"
)
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")


@dataclass(frozen=True)
class RemoteRepo:
    host: str
    owner: str
    name: str

    @property
    def full_name(self) -> str:
        return f"{self.owner}/{self.name}"


def parse_remote_url(url: str) -> RemoteRepo:
    """The host, owner and name a git remote URL points at; ``UsageError`` naming the URL when
    it is not a forge repository's URL."""
    text = url.strip()
    match = _URL_FORM.match(text) or _SCP_FORM.match(text)
    if match is None:
        raise UsageError(f"remote URL {url!r} names no host/owner/repository")
    path = match["path"].rstrip("/")
    path = path.removesuffix(".git")
    parts = path.split("/")
    if len(parts) != 2 or not all(_NAME.match(part) for part in parts):
        raise UsageError(f"remote URL {url!r} names no owner/repository (got path {path!r})")
    return RemoteRepo(match["host"].lower(), parts[0], parts[1])


def api_url_for(host: str) -> str:
    """The REST API of the forge at ``host``."""
    if host in ("github.com", "www.github.com"):
        return "https://api.github.com"
    return f"https://{host}/api/v3"


def origin_repo(repo: Path, remote: str = "origin") -> RemoteRepo:
    """The repository ``remote`` of the git repository at ``repo`` points at."""
    try:
        url = Git(repo, None).run_sync("remote", "get-url", remote, strip_stdout=True).stdout
    except GitError as exc:
        raise UsageError(
            f"{repo}: no remote {remote!r} to take the forge repository from "
            f"(set forge.repo: OWNER/NAME): {exc.stderr}"
        ) from None
    return parse_remote_url(url)


async def resolve_token(
    configured: str | None,
    environ: Mapping[str, str],
    *,
    cwd: Path,
    gh: str | None = "gh",
) -> str:
    """The token to use (see the module doc); ``gh=None`` skips the GitHub CLI."""
    token = _configured(configured, environ) or environ.get("GH_TOKEN") or ""
    token = token or environ.get("GITHUB_TOKEN") or ""
    if not token and gh is not None:
        token = await _gh_token(gh, environ, cwd)
    if not token:
        raise ForgeAuthError(
            "token lookup",
            None,
            "no GitHub token: set forge.token in the run config, GH_TOKEN or GITHUB_TOKEN, "
            "or log in with `gh auth login`",
        )
    secret_mask.remember_named({TOKEN_NAME: token})
    return token


def _configured(value: str | None, environ: Mapping[str, str]) -> str:
    if value is None:
        return ""
    try:
        expanded, _ = expand(value, environ)
    except UnsetVariable as exc:
        raise ForgeAuthError(
            "token lookup", None, f"forge.token refers to ${{{exc.name}}}, which is not set"
        ) from None
    return expanded.strip()


async def _gh_token(gh: str, environ: Mapping[str, str], cwd: Path) -> str:
    env, _ = command_env(("GH_CONFIG_DIR", "GH_HOST", "XDG_CONFIG_HOME"), parent=environ)
    binary = shutil.which(gh, path=env.get("PATH"))
    if binary is None:
        return ""
    done = await run_command([binary, "auth", "token"], cwd=cwd, env=env, timeout=_GH_TIMEOUT)
    if not done.ok:
        return ""
    lines = done.output.strip().splitlines()
    return lines[-1].strip() if lines else ""
