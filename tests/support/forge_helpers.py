"""A fake GitHub over a real bare repository, and a forge client pointed at it, for the forge
tests: the sleeps the client would take are recorded instead of slept."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from orchestrator.forge.github import GitHubForge
from orchestrator.forge.pacing import Pacing
from orchestrator.forge.public_text import markers
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.remote_repo import make_team

TOKEN = "ghp_fakeTokenForTests0123456789"
_MARKER = re.compile(r"\n*<!-- council:fact:[^>]* -->\n*\Z")
OWNER, REPO = "octo", "widgets"
PEOPLE = {"alice": "COLLABORATOR", "bob": "COLLABORATOR"}  # people with write access


@dataclass
class Sleeps:
    """An injectable sleep: each wait is recorded, none is slept."""

    taken: list[float] = field(default_factory=list)

    async def __call__(self, seconds: float) -> None:
        self.taken.append(seconds)


@dataclass
class Rig:
    gh: FakeGitHub
    forge: GitHubForge
    sleeps: Sleeps
    bare: Path

    def branch(self, name: str, files: dict[str, str], message: str = "work") -> str:
        """Branch ``name`` in the bare repository: one commit with ``files`` over main."""
        return self.gh.git.commit_files(
            name, files, message, parent=self.gh.git.tip("main"), force=True
        )


def bare_repo(tmp_path: Path) -> Path:
    return make_team(tmp_path).remote


@contextmanager
def rig(tmp_path: Path, *, rate_budget: float = 900.0, server_retries: int = 3) -> Iterator[Rig]:
    bare = bare_repo(tmp_path)
    sleeps = Sleeps()
    with FakeGitHub(bare, owner=OWNER, repo=REPO, token=TOKEN, people=PEOPLE) as gh:
        pacing = Pacing(
            rate_budget=rate_budget, server_retries=server_retries, sleep=sleeps, clock=lambda: 0.0
        )
        forge = GitHubForge(f"{OWNER}/{REPO}", TOKEN, api_url=gh.api_url, pacing=pacing)
        yield Rig(gh, forge, sleeps, bare)


def said(body: str) -> str:
    """A comment council posted, without its fact marker at the end (``forge.told``), which
    it must carry: the words it shows."""
    assert len(markers(body)) == 1, body
    return shown(_MARKER.sub("", body).rstrip("\n"))


def shown(body: str) -> str:
    """What a person reads of ``body``: the zero-width spaces that keep a ``<`` from opening a
    tag and an ``@`` from pinging (``forge.public_text``) are not seen."""
    return body.replace("\u200b", "")
