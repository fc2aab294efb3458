"""The issue-to-pull-request loop's test world: a bare remote with a clone (``repo``), the fake
GitHub over the remote, and a run config whose tasks come from the issues labelled ``council``
and land by pull request (one approval, checks ignored, council merges). ``LOOP`` is the
config's forge part alone, for configs that bring the rest (a team's workstations)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from orchestrator.testing.fake_github import FakeGitHub
from tests.support.remote_repo import make_team

__all__ = ["LOOP", "issue_loop", "loop_config"]

LOOP = """\
forge: {{repo: {owner}/{name}, api_url: "{api_url}", token: "${{GH_TOKEN}}"}}
landing: {{via: pull_request, approvals: 1, checks: ignore, merge: auto, poll: 0.2}}
sources:
  - issues: {{labels: [council], poll: 0.2}}
tasks: []
"""

_RUN = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
default_adapter: cli
workflow: {phases: [{name: build}]}
retry: {max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
"""


def loop_config(gh: FakeGitHub, owner: str, name: str) -> str:
    """The forge, landing and sources part of a config for the fake GitHub ``gh``."""
    return LOOP.format(owner=owner, name=name, api_url=gh.api_url)


@contextmanager
def issue_loop(
    root: Path, *, owner: str, name: str, token: str, config: str = "run.yaml"
) -> Iterator[tuple[FakeGitHub, Path]]:
    """The world under ``root``: the fake GitHub (``token`` its only one), and the run
    config's path (``root/config``)."""
    team = make_team(root)
    team.clone("repo")
    people = {"alice": "COLLABORATOR"}  # a person with write access: her reviews count
    with FakeGitHub(team.remote, owner=owner, repo=name, token=token, people=people) as gh:
        path = root / config
        path.write_text(_RUN + loop_config(gh, owner, name))
        yield gh, path
