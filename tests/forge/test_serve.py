"""``council serve FILE``: the long-running mode. A real ``council`` process on the fake GitHub
over a real bare repository: an issue labelled while it serves becomes a task and a pull
request, an approval merges it, the queue settled is no end (the next issue is taken up), a
Ctrl-C or SIGTERM stops it cleanly (exit 0), and the next ``serve`` goes on from there with
nothing run or opened twice."""

from __future__ import annotations

import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.models import TaskStatus
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import COUNCIL, ENV, reap, task_states, wait_for
from tests.support.issue_loop import issue_loop
from tests.support.remote_repo import make_team
from tests.support.timing import patience

TOKEN = "ghp_fakeTokenForServe0123456789abcdefghij"
OWNER, NAME = "octo", "served"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path]]:
    with issue_loop(tmp_path, owner=OWNER, name=NAME, token=TOKEN, config="serve.yaml") as found:
        yield found


def serving(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COUNCIL, "serve", str(config)],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
    )


def pull_of(gh: FakeGitHub, issue: int) -> int | None:
    """The number of the pull request whose head is the issue's task branch, if one is open."""
    for number, record in list(gh.site.issues.items()):
        if record.pull is not None and record.pull.head == f"council/issue-{issue}":
            return number
    return None


def landed(gh: FakeGitHub, issue: int) -> bool:
    number = pull_of(gh, issue)
    return number is not None and bool(gh.site.pull_json(number)["merged"])


def done(repo: Path, issue: int) -> bool:
    state = task_states(repo).get(f"issue-{issue}")
    return state is not None and state.status == TaskStatus.DONE


def issue_landed_while_serving(gh: FakeGitHub, repo: Path, issue: int) -> None:
    wait_for(lambda: pull_of(gh, issue) is not None, f"a pull request for issue #{issue}")
    number = pull_of(gh, issue)
    assert number is not None
    gh.add_review(number, "alice", "APPROVED")
    wait_for(lambda: landed(gh, issue), f"pull request #{number} merged")
    wait_for(lambda: done(repo, issue), f"issue-{issue} recorded done")


def stop(process: subprocess.Popen[str], how: signal.Signals) -> tuple[int, str, str]:
    process.send_signal(how)
    out, err = process.communicate(timeout=patience(60))
    return process.returncode, out, err


def test_serve_takes_up_issues_as_they_come_and_stops_cleanly(
    world: tuple[FakeGitHub, Path],
) -> None:
    gh, config = world
    repo = config.parent / "repo"
    first = gh.create_issue("One", body="WRITE one.txt one\n", labels=["council"])
    process = serving(config)
    try:
        issue_landed_while_serving(gh, repo, first)
        # Everything settled, and it serves on: an issue labelled now is taken up.
        second = gh.create_issue("Two", body="WRITE two.txt two\n", labels=["council"])
        issue_landed_while_serving(gh, repo, second)
        assert process.poll() is None
        code, out, err = stop(process, signal.SIGINT)
    finally:
        reap(process)

    assert code == 0, err
    assert "stopped; council serve or council resume goes on from here" in out
    states = task_states(config.parent / "repo")
    assert {states[f"issue-{n}"].status for n in (first, second)} == {TaskStatus.DONE}

    # Served again: the stopped session goes on, nothing is run or opened twice, and a new
    # issue is taken up; SIGTERM (a service manager's stop) ends it as cleanly.
    pulls_before = [n for n, record in gh.site.issues.items() if record.pull is not None]
    process = serving(config)
    try:
        third = gh.create_issue("Three", body="WRITE three.txt three\n", labels=["council"])
        issue_landed_while_serving(gh, repo, third)
        code, _, err = stop(process, signal.SIGTERM)
    finally:
        reap(process)
    assert code == 0, err
    pulls = [n for n, record in gh.site.issues.items() if record.pull is not None]
    assert len(pulls) == len(pulls_before) + 1 == 3
    states = task_states(config.parent / "repo")
    assert {states[f"issue-{n}"].status for n in (first, second, third)} == {TaskStatus.DONE}
    assert len({states[f"issue-{n}"].session_id for n in (first, second, third)}) == 1


def test_serve_without_sources_is_refused_before_anything(tmp_path: Path) -> None:
    team = make_team(tmp_path)
    team.clone("repo")
    config = tmp_path / "plain.yaml"
    config.write_text(
        "repo: repo\nadapters: {cli: {type: scripted}}\ndefault_adapter: cli\n"
        "tasks: [{id: one, prompt: WRITE one.txt one}]\n"
    )
    done = subprocess.run(
        [*COUNCIL, "serve", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )
    assert done.returncode == 2, done.stderr
    assert "council serve waits for work from the config's sources:" in done.stderr
    assert not (tmp_path / "repo" / ".council").exists()


def test_serve_without_the_github_extra_names_the_extra_to_install(
    world: tuple[FakeGitHub, Path], tmp_path: Path
) -> None:
    """githubkit is the ``github`` extra's (some 60 MB of schemas, only for those who use the
    forge): without it, ``council serve`` stops before anything with one line naming the
    extra, never a traceback. Its absence is made here by a ``sitecustomize`` that blocks the
    import, as an install without the extra has it."""
    _, config = world
    blocker = tmp_path / "no-githubkit"
    blocker.mkdir()
    blocked = "for name in ('githubkit', 'githubkit_schemas'):\n    sys.modules[name] = None\n"
    (blocker / "sitecustomize.py").write_text(f"import sys\n{blocked}")
    pythonpath = f"{blocker}:{ENV['PYTHONPATH']}" if ENV.get("PYTHONPATH") else str(blocker)
    done = subprocess.run(
        [*COUNCIL, "serve", str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN, "PYTHONPATH": pythonpath},
        timeout=patience(60),
    )
    assert done.returncode != 0
    assert "pip install 'cli-council[github]'" in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
