"""Issues in, pull requests out, in team mode: two workstations on one PostgreSQL database and
one bare remote, the fake GitHub over that remote. Both read the same labelled issues at the
same time; the team's queue holds each issue's task once, each task's pull request is opened
once (whichever workstation ran it), and one workstation's resume merges them all after the
reviews, each issue closed by its own merge."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import COUNCIL
from tests.support.issue_loop import loop_config
from tests.support.merge_repo import git
from tests.support.team_helpers import Team
from tests.support.timing import patience

TOKEN = "ghp_fakeTokenForTheTeamLoop0123456789abc"
OWNER, NAME = "octo", "team"
ISSUES = 4


@pytest.fixture
def loop(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Team, FakeGitHub]]:
    team = Team(tmp_path, pg_dsn)
    people = {"alice": "COLLABORATOR"}  # a person with write access: her reviews count
    with FakeGitHub(team.remote, owner=OWNER, repo=NAME, token=TOKEN, people=people) as gh:
        for name in ("w1", "w2"):
            config = Path(team.workstation(name, [], sessions=2))
            text = config.read_text().replace("tasks:\n", loop_config(gh, OWNER, NAME))
            config.write_text(text)
        try:
            yield team, gh
        finally:
            team.stop_all()


def pulls_by_head(gh: FakeGitHub) -> dict[str, list[int]]:
    found: dict[str, list[int]] = {}
    for number, record in gh.site.issues.items():
        if record.pull is not None:
            found.setdefault(record.pull.head, []).append(number)
    return found


def test_two_workstations_share_the_issues_and_open_each_pull_request_once(
    loop: tuple[Team, FakeGitHub],
) -> None:
    team, gh = loop
    issues = [
        gh.create_issue(f"Note {n}", body=f"WRITE notes/n{n}.txt note {n}\n", labels=["council"])
        for n in range(1, ISSUES + 1)
    ]
    token = {"GH_TOKEN": TOKEN}
    team.start("w1", env=token)
    team.start("w2", env=token)
    first = {name: team.finish(name, timeout=120) for name in ("w1", "w2")}

    # Each run ends with the rest waiting on a person: every task in review, its pull
    # request opened once, by whichever workstation ran it.
    for name, (code, report, err) in first.items():
        assert code == 1, f"{name}: {err[-2000:]}"
        assert sorted(t["task_id"] for t in report["tasks"]) == sorted(
            f"issue-{n}" for n in issues
        ), name
        assert {t["status"] for t in report["tasks"]} == {"in_review"}, name
    heads = pulls_by_head(gh)
    assert sorted(heads) == sorted(f"council/issue-{n}" for n in issues)
    assert all(len(numbers) == 1 for numbers in heads.values()), heads
    holders = {t["task_id"]: t.get("holder") for t in first["w1"][1]["tasks"]}
    assert len(holders) == ISSUES

    for (number,) in heads.values():
        gh.add_review(number, "alice", "APPROVED")
    resumed = subprocess.run(
        [*COUNCIL, "resume", str(team.root / "w2.yaml"), "--json"],
        cwd=team.root,
        capture_output=True,
        text=True,
        env={**team.env(), **token},
        timeout=patience(120),
    )
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert {t["status"] for t in report["tasks"]} == {"done"}
    assert all(gh.site.pull_json(n)["merged"] for (n,) in heads.values())
    assert all(gh.site.issues[n].state == "closed" for n in issues)
    assert pulls_by_head(gh) == heads  # still one each: nothing opened again
    for n in range(1, ISSUES + 1):
        assert git(team.remote, "show", f"main:notes/n{n}.txt") == f"note {n}"
