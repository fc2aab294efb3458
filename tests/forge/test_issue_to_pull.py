"""The whole loop of issue 31 as a person sees it on GitHub: a labelled issue becomes a task,
the task's work becomes one pull request that closes the issue, a review is answered, and the
merge closes the issue. ``council`` as a real process, the offline scripted CLI, the fake
GitHub over a real bare repository that is the clone's ``origin``."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.forge.base import IN_REVIEW
from orchestrator.models import TaskStatus
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import ENV, task_states
from tests.support.forge_helpers import said
from tests.support.issue_loop import issue_loop
from tests.support.merge_repo import git
from tests.support.timing import patience

TOKEN = "ghp_fakeTokenForTheWholeLoop0123456789"
OWNER, NAME = "octo", "widgets"
COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path]]:
    with issue_loop(tmp_path, owner=OWNER, name=NAME, token=TOKEN) as found:
        yield found


def _council(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, command, str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
        timeout=patience(90),
    )


def test_an_issue_lands_through_a_reviewed_pull_request_that_closes_it(
    world: tuple[FakeGitHub, Path],
) -> None:
    gh, config = world
    issue = gh.create_issue(
        "Add the greeting", body="Say hello.\nWRITE hello.txt hello\n", labels=["council"]
    )
    gh.create_issue("Not for council", body="WRITE no.txt no\n")

    first = _council("run", config)

    # One pull request, for the labelled issue only, closing it; the run waits for a review.
    assert first.returncode == 1, first.stderr
    pulls = [n for n, record in gh.site.issues.items() if record.pull is not None]
    assert len(pulls) == 1, pulls
    (number,) = pulls
    pull = gh.site.pull_json(number)
    assert pull["head"]["ref"] == f"council/issue-{issue}"
    assert f"Closes #{issue}" in pull["body"]
    told = [said(comment.body) for comment in gh.site.issues[issue].comments]
    assert told[0].startswith(f"CLI Council started work on this issue: task `issue-{issue}`")
    assert told[-1] == f"Pull request #{number} carries this work: {pull['html_url']}"
    assert gh.site.issues[issue].labels == ["council", IN_REVIEW]
    assert task_states(config.parent / "repo")[f"issue-{issue}"].status == TaskStatus.IN_REVIEW

    gh.add_review(number, "alice", "APPROVED")
    second = _council("resume", config)

    assert second.returncode == 0, second.stderr
    assert gh.site.pull_json(number)["merged"] is True
    assert gh.site.issues[issue].state == "closed"  # "Closes #N", merged into the default branch
    assert gh.site.issues[issue].labels == ["council"]
    # Nothing more said: the merge closed it, and the pull request it names says the rest.
    assert gh.site.issues[issue].comments[-1].body.startswith(f"Pull request #{number} carries")
    team_base = git(config.parent / "repo", "ls-remote", "origin", "refs/heads/main").split()[0]
    assert git(config.parent / "repo", "show", f"{team_base}:hello.txt") == "hello"
    state = task_states(config.parent / "repo")[f"issue-{issue}"]
    assert state.status == TaskStatus.DONE
    assert [r for r in gh.site.issues.values() if r.pull is not None] == [gh.site.issues[number]]
    # Nothing asked for in vain: no label removed that the issue did not have, and the pull
    # request opened without a look by its head first.
    assert [r.path for r in gh.requests if r.method == "DELETE" and r.status == 404] == []
    assert [r.path for r in gh.requests if r.method == "GET" and r.path.endswith("/pulls")] == []


def test_the_happy_path_asks_github_at_most_twelve_times_a_task(
    world: tuple[FakeGitHub, Path],
) -> None:
    """Issue to merge, counted (``bench/forge_requests_bench.py`` prints the figures): the run
    reads no pull request it opened (nobody can have reviewed it yet, and an opening wakes
    the follower for that one only), and the resume merges each approved one after reading
    its reviews alone (checks ignored here), without reading it first."""
    gh, config = world
    # The polls at their defaults, as a user has them: the sources read at the start (then
    # every 60 s), the pull requests every 30 s (a loaded machine re-read the issues every
    # 0.2 s while it built, and the count went over).
    text = config.read_text().replace("merge: auto, poll: 0.2", "merge: auto")
    config.write_text(text.replace("labels: [council], poll: 0.2", "labels: [council]"))
    issues = [
        gh.create_issue(f"Note {n}", body=f"WRITE notes/{n}.txt note {n}\n", labels=["council"])
        for n in range(3)
    ]
    gh.clear_requests()
    assert _council("run", config).returncode == 1
    opened = list(gh.requests)
    pulls = [n for n, record in gh.site.issues.items() if record.pull is not None]
    assert len(pulls) == len(issues)
    assert not [r for r in opened if r.method == "GET" and "/pulls/" in r.path], opened
    for number in pulls:
        gh.add_review(number, "alice", "APPROVED")
    assert _council("resume", config).returncode == 0
    asked = list(gh.requests)  # since the clear: the run's and the resume's
    assert asked[: len(opened)] == opened
    assert all(gh.site.pull_json(number)["merged"] for number in pulls)
    merges = [r for r in asked if r.path.endswith("/merge")]
    assert [r.status for r in merges] == [200] * len(pulls)
    assert not [
        r
        for r in asked
        if r.method == "GET" and r.path.split("?")[0].endswith(tuple(f"/pulls/{n}" for n in pulls))
    ]
    assert len(asked) <= 12 * len(issues), [f"{r.method} {r.path}" for r in asked]
