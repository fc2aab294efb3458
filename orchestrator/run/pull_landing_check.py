"""What ``landing.via: pull_request`` needs of this machine: a git remote ``origin`` to push
the task branches to, and a forge to open the pull requests on (the config's ``forge:``
section, or the one the origin remote's URL names); and of the file: no council task (their
winner is merged by the council step, not through a pull request yet). ``council config
validate`` says what is missing where it belongs; ``council run`` refuses before anything is
written."""

from __future__ import annotations

import anyio.to_thread

from orchestrator.config.run import RunConfig
from orchestrator.errors import GitError, UsageError
from orchestrator.forge.identity import parse_remote_url
from orchestrator.git.repo import Git
from orchestrator.run.preflight import Finding

__all__ = ["PULL_REMOTE", "pull_landing_finding"]

PULL_REMOTE = "origin"  # where task branches go for their pull requests


async def pull_landing_finding(config: RunConfig) -> Finding | None:
    """Why landing by pull request cannot work here, at ``landing.via``; None when it can
    (or the run lands by merge)."""
    if config.landing.via != "pull_request":
        return None
    for index, task in enumerate(config.tasks):
        if task.council:
            return Finding(
                ("tasks", index, "council"),
                "landing.via: pull_request does not land council tasks (best of N) yet: "
                "set council: false, or land this run by merge",
            )
    if not (config.repo / ".git").exists():
        return None  # the repository's own finding says what is wrong
    url = await anyio.to_thread.run_sync(_remote_url, config)
    if url is None:
        return Finding(
            ("landing", "via"),
            f"landing.via: pull_request needs a git remote {PULL_REMOTE!r} in {config.repo} "
            "to push task branches to (git remote add origin <url>)",
            here=True,
        )
    settings = config.forge
    if settings is not None and settings.repo is not None and settings.api_url is not None:
        return None
    try:
        parse_remote_url(url)
    except UsageError as exc:
        return Finding(
            ("landing", "via"),
            f"landing.via: pull_request needs a forge: {exc}; add a `forge:` section with "
            "repo: OWNER/NAME and api_url:",
            here=True,
        )
    return None


def _remote_url(config: RunConfig) -> str | None:
    try:
        found = Git(config.repo, None).run_sync("remote", "get-url", PULL_REMOTE, strip_stdout=True)
    except GitError:
        return None
    return found.stdout or None
