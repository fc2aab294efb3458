"""The world of ``council demo --forge``: the issue-to-pull-request loop, offline.

``forge_demo(directory)`` builds it under ``directory`` and keeps it up while in use:

- ``origin.git``: a bare repository holding the demo's sample project, the fake GitHub's
  repository (``council-demo/textkit``), and ``repo``: its clone, which the run works on;
- the fake GitHub over it on 127.0.0.1, with a token made for this demo alone;
- two issues labelled ``council``, each asking for a file in the scripted CLI's words;
- ``DemoReviewer``: a person with write access (a collaborator, so council hears them)
  reviewing each pull request as it opens: it asks for one change (a review with a line
  comment, whose body the scripted CLI follows), then approves the pull request once its head
  has moved, so council merges it;
- ``demo-forge.yaml``: the run config (the scripted CLI, ``landing.via: pull_request``,
  ``sources:`` the labelled issues).

Made fresh on every call: a directory this module made before (its marker file inside) is
removed first; anything else there is refused, never touched.
"""

from __future__ import annotations

import secrets
import shutil
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import anyio

from orchestrator.errors import UsageError
from orchestrator.git.repo import Git
from orchestrator.run.demo_repo import ensure_sample_repo
from orchestrator.testing.fake_github.server import FakeGitHub

__all__ = ["DEMO_ISSUES", "TOKEN_VARIABLE", "DemoReviewer", "ForgeDemo", "forge_demo"]

OWNER, NAME = "council-demo", "textkit"
TOKEN_VARIABLE = "COUNCIL_DEMO_GITHUB_TOKEN"  # noqa: S105 (the name of a variable)
_MARK = ".council-forge-demo"
REVIEWER = "demo-reviewer"


@dataclass(frozen=True)
class DemoIssue:
    title: str
    body: str
    asked: str  # the reviewer's one change, in the scripted CLI's words
    comment: tuple[str, int, str]  # (path, line, text) of its line comment


DEMO_ISSUES = (
    DemoIssue(
        "Add a greeting",
        "The project should greet its readers.\n\nWRITE GREETING.txt Hello, reader!",
        "APPEND README.md The project greets you in GREETING.txt.",
        ("GREETING.txt", 1, "Say in the README where the greeting is, too."),
    ),
    DemoIssue(
        "Say where to start",
        "New readers should know where to begin.\n\nWRITE START.txt Read README.md first.",
        "WRITE NEXT.txt Then read textkit/words.py.",
        ("START.txt", 1, "Name the code to read next as well."),
    ),
)
"""Each issue's body holds the scripted CLI's instruction; the reviewer's change is one more
(a feedback round's prompt holds the task's own instructions too, which it runs again)."""

_CONFIG = """\
# The offline demo of the issue-to-pull-request loop (council demo --forge): the fake GitHub
# on {api_url} over {origin}; its token is made for this demo alone.
repo: repo
adapters:
  scripted: {{type: scripted, options: {{delay: 0.3}}}}
default_adapter: scripted
workflow: {{phases: [{{name: build}}]}}
scheduler: {{tick: 0.1, heartbeat_interval: 1, stale_threshold: 30}}
forge: {{repo: {owner}/{name}, api_url: "{api_url}", token: "${{{token}}}"}}
landing: {{via: pull_request, approvals: 1, checks: ignore, merge: auto, poll: 0.3}}
sources:
  - issues: {{labels: [council], poll: 1}}
tasks: []
"""


class DemoReviewer:
    """A person on the fake GitHub: each pull request gets one review asking for its issue's
    change, and an approval once its head has moved past the commit that review saw."""

    def __init__(self, gh: FakeGitHub, asks: dict[str, DemoIssue]) -> None:
        # A collaborator (write access): council hears only such people's reviews.
        gh.set_association(REVIEWER, "COLLABORATOR")
        self._gh = gh
        self._asks = asks  # head branch -> the issue it is for
        self._asked: dict[int, str] = {}  # pull number -> the head its change was asked on
        self._approved: set[int] = set()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="demo-reviewer", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _watch(self) -> None:
        while not self._stop.wait(0.25):
            self.look()

    def look(self) -> None:
        """Review what is there to review now."""
        site = self._gh.site
        with site.lock:
            for number, record in list(site.issues.items()):
                pull = record.pull
                if pull is None or pull.merged or record.state != "open":
                    continue
                issue = self._asks.get(pull.head)
                if issue is None or number in self._approved:
                    continue
                head = site.head_sha(number)
                asked_on = self._asked.get(number)
                if asked_on is None:
                    site.add_review(
                        number, REVIEWER, "CHANGES_REQUESTED", issue.asked, comments=[issue.comment]
                    )
                    self._asked[number] = head
                elif head != asked_on:
                    site.add_review(number, REVIEWER, "APPROVED", "Thanks, that is it.")
                    self._approved.add(number)


@dataclass
class ForgeDemo:
    directory: Path
    repo: Path
    config: Path
    token: str
    gh: FakeGitHub
    issues: list[int] = field(default_factory=list)

    def all_closed(self) -> bool:
        """Every demo issue closed (its pull request merged into the default branch)."""
        with self.gh.site.lock:
            return all(self.gh.site.issues[n].state == "closed" for n in self.issues)


@contextmanager
def forge_demo(directory: Path) -> Iterator[ForgeDemo]:
    """The demo's world under ``directory``, made fresh, the fake GitHub and its reviewer up
    while the context is open."""
    _make_room(directory)
    directory = directory.resolve()
    origin, repo = directory / "origin.git", directory / "repo"
    anyio.run(ensure_sample_repo, directory / "seed")
    Git(directory, None).run_sync("init", "-q", "--bare", "-b", "main", str(origin))
    Git(directory / "seed", None).run_sync("push", "-q", str(origin), "main:refs/heads/main")
    Git(directory, None).run_sync("clone", "-q", str(origin), str(repo))
    shutil.rmtree(directory / "seed")
    token = "ghp_" + secrets.token_hex(18)
    with FakeGitHub(origin, owner=OWNER, repo=NAME, token=token) as gh:
        config = directory / "demo-forge.yaml"
        config.write_text(
            _CONFIG.format(
                api_url=gh.api_url, origin=origin, owner=OWNER, name=NAME, token=TOKEN_VARIABLE
            )
        )
        demo = ForgeDemo(directory, repo, config, token, gh)
        asks: dict[str, DemoIssue] = {}
        for issue in DEMO_ISSUES:
            number = gh.create_issue(issue.title, issue.body, labels=["council"])
            demo.issues.append(number)
            asks[f"council/issue-{number}"] = issue
        reviewer = DemoReviewer(gh, asks)
        reviewer.start()
        try:
            yield demo
        finally:
            reviewer.stop()


def _make_room(directory: Path) -> None:
    """``directory`` empty and marked as the demo's: one this module made is made again."""
    if directory.exists():
        if not (directory / _MARK).is_file():
            if any(directory.iterdir()):
                raise UsageError(
                    f"{directory} exists and is not a forge demo's directory: give --dir "
                    "another place (nothing there was touched)"
                )
        else:
            shutil.rmtree(directory)
    directory.mkdir(parents=True, exist_ok=True)
    (directory / _MARK).write_text("made by council demo --forge; removed by the next one\n")
