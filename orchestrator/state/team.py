"""Team mode: several workstations, each in its own clone, run one queue in a shared database and
land on a shared git remote.

A run is in team mode when its state backend is ``postgresql``. Its ``Team`` names:

- ``run_key``: the team run workstations join (``state.run``, else
  ``<repository name>-<base branch>``, the repository's name read from the remote's URL), so
  the same command in another clone finds the same run;
- ``remote``: the git remote the base branch of record lives on (``state.remote``, else
  ``origin``); merges land there, by a push the remote itself checks (``merge.remote``);
- ``workstation``: this process's id in the team (host, pid, a random part), shown by
  ``council status`` and used to tell its presence record apart.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from pathlib import Path

from orchestrator.config.run import RunConfig
from orchestrator.errors import UnusableRepository
from orchestrator.git.repo import Git
from orchestrator.process import procid

__all__ = ["DEFAULT_REMOTE", "Team", "remote_base_ref", "team_for"]

DEFAULT_REMOTE = "origin"
_UNSAFE = re.compile(r"[^a-z0-9._-]+")


@dataclass(frozen=True)
class Team:
    run_key: str
    remote: str
    workstation: str


async def team_for(config: RunConfig) -> Team | None:
    """The run's team (None on the file backend); ``UnusableRepository`` when the clone has no
    such remote, naming it and how to add one."""
    if config.state.backend != "postgresql":
        return None
    remote = config.state.remote or DEFAULT_REMOTE
    git = Git(config.repo, None)
    found = await git.run("remote", "get-url", remote, check=False)
    if not found.ok or not found.out:
        raise UnusableRepository(
            f"{config.repo} has no git remote {remote!r}: a team lands its work on a shared "
            f"remote (add it with `git remote add {remote} <url>`, or name another one in "
            "state.remote)"
        )
    url = found.out
    key = config.state.run or safe_key(f"{repository_name(url)}-{config.base_branch}")
    proc = procid.current()
    workstation = safe_key(f"{proc.host}-{proc.pid}-{secrets.token_hex(2)}")
    return Team(run_key=key, remote=remote, workstation=workstation)


def repository_name(url: str) -> str:
    """``council`` for ``git@host:team/council.git``, ``https://h/team/council``, or
    ``/srv/git/council.git``."""
    tail = re.split(r"[/:\\]", url.rstrip("/"))[-1]
    return tail.removesuffix(".git") or Path(url).name or "repo"


def safe_key(text: str) -> str:
    """``text`` as a safe id: lower case, runs of other characters as one ``-``."""
    key = _UNSAFE.sub("-", text.lower()).strip("-.") or "run"
    return key[:64].rstrip("-.")


def remote_base_ref(team: Team, base_branch: str) -> str:
    """Where this clone keeps the remote's base as last fetched: the branch of record."""
    return f"refs/remotes/{team.remote}/{base_branch}"
