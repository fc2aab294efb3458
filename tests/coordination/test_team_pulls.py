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


STACK = [
    {"id": "one", "prompt": "WRITE stack/one.txt first"},
    {"id": "two", "prompt": "WRITE stack/two.txt second", "depends_on": ["one"]},
    {"id": "three", "prompt": "WRITE stack/three.txt third", "depends_on": ["two"]},
]


@pytest.fixture
def stacked(pg_dsn: str, tmp_path: Path) -> Iterator[tuple[Team, FakeGitHub]]:
    team = Team(tmp_path, pg_dsn)
    people = {"alice": "COLLABORATOR"}
    with FakeGitHub(team.remote, owner=OWNER, repo=NAME, token=TOKEN, people=people) as gh:
        forge = (
            f'forge: {{repo: {OWNER}/{NAME}, api_url: "{gh.api_url}", token: "${{GH_TOKEN}}"}}\n'
            "landing: {via: pull_request, pulls: stacked, approvals: 1, checks: ignore, "
            "merge: auto, poll: 0.2}\n"
        )
        for name in ("w1", "w2"):
            config = Path(team.workstation(name, STACK, sessions=1))
            config.write_text(config.read_text().replace("tasks:\n", forge + "tasks:\n"))
        try:
            yield team, gh
        finally:
            team.stop_all()


def test_a_stack_built_on_two_workstations_lands_bottom_up_each_once(
    stacked: tuple[Team, FakeGitHub],
) -> None:
    team, gh = stacked
    token = {"GH_TOKEN": TOKEN}
    team.start("w1", env=token)
    team.start("w2", env=token)
    for name in ("w1", "w2"):
        # Each ends with exit 1: the stack waits on a person (a workstation with nothing of
        # its own left may leave earlier, the other going on).
        code, _, err = team.finish(name, timeout=120)
        assert code == 1, f"{name}: {err[-2000:]}"
    shown = subprocess.run(
        [*COUNCIL, "status", str(team.root / "w1.yaml"), "--json"],
        cwd=team.root,
        capture_output=True,
        text=True,
        env={**team.env(), **token},
        timeout=patience(60),
    )
    assert {t["status"] for t in json.loads(shown.stdout)["tasks"]} == {"in_review"}
    heads = pulls_by_head(gh)
    assert all(len(numbers) == 1 for numbers in heads.values()), heads
    number = {head.removeprefix("council/"): n for head, (n,) in heads.items()}
    assert sorted(number) == ["one", "three", "two"]
    bases = {t: gh.site.pull_json(n)["base"]["ref"] for t, n in number.items()}
    assert bases == {"one": "main", "two": "council/one", "three": "council/two"}
    # Each built on the exact head below it, whichever workstation pushed that.
    for task, below in (("two", "one"), ("three", "two")):
        head = gh.site.head_sha(number[task])
        assert git(team.remote, "rev-parse", f"{head}^") == gh.site.head_sha(number[below])
    # Approved from the top down: whichever workstation follows them, the top is held back.
    for task in ("three", "two", "one"):
        gh.add_review(number[task], "alice", "APPROVED")
    # Both workstations resume at once, following the same pull requests.
    resumed = [
        subprocess.Popen(
            [*COUNCIL, "resume", str(team.root / f"{name}.yaml"), "--json"],
            cwd=team.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**team.env(), **token},
        )
        for name in ("w1", "w2")
    ]
    for process in resumed:
        out, err = process.communicate(timeout=patience(120))
        assert process.returncode == 0, err[-2000:]
        assert {t["status"] for t in json.loads(out)["tasks"]} == {"done"}
    merges = [
        r
        for r in gh.requests
        if r.method == "PUT" and r.path.endswith("/merge") and r.status == 200
    ]
    assert len(merges) == 3
    subjects = git(team.remote, "log", "--first-parent", "--reverse", "--format=%s", "main")
    landed = [line for line in subjects.splitlines() if line.startswith("Merge pull request")]
    assert landed == [
        f"Merge pull request #{number[t]} from {OWNER}/council/{t}" for t in ("one", "two", "three")
    ]
