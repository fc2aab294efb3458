"""Issues as tasks end to end: ``council run FILE`` as a real process, the scripted CLI, and the
fake GitHub over a real bare repository (the test repository's origin) as the forge. Labelled
issues become tasks and land; an unlabelled issue and a pull request are left alone; an issue
closed while its task waits cancels it; a failing task's issue says so; the issues hear what
happens; the token is in nothing the run wrote. And ``config validate`` on a ``sources:`` with
no forge to read."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest

from orchestrator.forge.base import FAILED, WORKING
from orchestrator.plugins.host import load_plugins
from orchestrator.run.config_check import validate_config
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import COUNCIL, ENV, events, reap, seen, wait_for
from tests.support.forge_helpers import OWNER, REPO, TOKEN, said
from tests.support.merge_repo import git
from tests.support.remote_repo import make_team
from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience

TOKEN_VARIABLE = "FAKE_FORGE_TOKEN"

CONFIG = """\
repo: repo
adapters:
  fast: {{type: scripted, options: {{delay: 0}}}}
default_adapter: fast
capacity: {{sessions: 2}}
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}}
sandbox: {{read: [{gates}]}}
forge:
  repo: {owner}/{name}
  api_url: {api_url}
  token: ${{{variable}}}
tasks: []
sources:
  - issues: {{labels: [council], poll: 0.2}}
"""


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeGitHub]:
    with FakeGitHub(make_team(tmp_path).remote, owner=OWNER, repo=REPO, token=TOKEN) as gh:
        yield gh


def _submitted(repo: Path) -> list[str]:
    """The tasks submitted to the run after it started."""
    return [
        task_id
        for event in events(repo)
        if event["type"] == "task.submitted"
        for task_id in event["data"]["task_ids"]
    ]


def _comments(gh: FakeGitHub, number: int) -> list[str]:
    return [said(comment.body) for comment in gh.site.issues[number].comments]


def test_labelled_issues_run_as_tasks_and_hear_what_happens(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    repo = new_repo(tmp_path)
    git(repo, "remote", "add", "origin", str(tmp_path / "remote.git"))
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "open"

    first = fake.create_issue("Write the notes", "WRITE notes.txt hello", labels=["council"])
    second = fake.create_issue(
        "Write more notes",
        "WRITE more.txt world\n\n```council\ndepends_on: [issue-1]\nfiles: [more.txt]\n```\n",
        labels=["council"],
    )
    fake.create_issue("Not for the council", "WRITE nope.txt x", labels=["docs"])
    fake.git.commit_files("feature", {"f.txt": "f\n"}, "work", parent=fake.git.tip("main"))
    pull = fake.open_pull("feature", "main", "A pull request", "WRITE pull.txt x")
    fake.site.issues[pull].labels.append("council")
    gated = fake.create_issue("Gated", f"WAIT_FOR {gate} 60\nWRITE gated.txt x", labels=["council"])
    waiter = fake.create_issue(
        "Waits for the gate",
        f"WRITE waiter.txt x\n```council\ndepends_on: [issue-{gated}]\n```",
        labels=["council"],
    )
    failing = fake.create_issue("Cannot work", "FAIL broken on purpose", labels=["council"])
    stray = fake.create_issue(
        "Asks for a CLI the run lacks", "```council\nadapters: [nope]\n```", labels=["council"]
    )

    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.format(
            gates=gates,
            owner=OWNER,
            name=REPO,
            api_url=fake.api_url,
            variable=TOKEN_VARIABLE,
        )
    )
    run = subprocess.Popen(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, TOKEN_VARIABLE: TOKEN},
    )
    try:
        wait_for(lambda: seen(repo, "task.dispatched", task_id=f"issue-{gated}"), "the gate")
        fake.human_close(waiter)  # its task waits behind the gate: withdrawn
        wait_for(lambda: seen(repo, "issue.withdrawn", task_id=f"issue-{waiter}"), "withdrawal")
        late = fake.create_issue("Came later", "WRITE late.txt x", labels=["council"])
        wait_for(lambda: f"issue-{late}" in _submitted(repo), "the late issue's task")
        gate.touch()
        out, err = run.communicate(timeout=patience(60))
    finally:
        reap(run)

    assert run.returncode == 1, err  # the failing issue's task failed
    assert TOKEN not in out + err
    report = json.loads(out)
    statuses = {task["task_id"]: task["status"] for task in report["tasks"]}
    assert statuses == {
        f"issue-{first}": "done",
        f"issue-{second}": "done",
        f"issue-{gated}": "done",
        f"issue-{waiter}": "cancelled",
        f"issue-{failing}": "failed",
        f"issue-{late}": "done",
    }
    assert sorted(merged_tasks(repo)) == sorted(
        [f"issue-{first}", f"issue-{second}", f"issue-{gated}", f"issue-{late}"]
    )
    reads = [event["data"]["new"] for event in events(repo) if event["type"] == "issues.read"]
    assert reads == [
        [f"issue-{n}" for n in (first, second, gated, waiter, failing)],
        [f"issue-{late}"],
    ]
    assert _submitted(repo) == [f"issue-{late}"]  # the others were in the session from its start
    assert merged_tasks(repo).index(f"issue-{first}") < merged_tasks(repo).index(f"issue-{second}")
    assert git(repo, "show", "main:notes.txt") == "hello"

    # What the issues heard.
    started = f"CLI Council started work on this issue: task `issue-{first}` on branch"
    assert _comments(fake, first)[0].startswith(started)
    assert _comments(fake, first)[1].startswith(f"Task `issue-{first}` landed on `main` in ")
    assert len(_comments(fake, first)) == 2
    assert fake.site.issues[first].labels == ["council"]  # council:working came and went
    assert any(
        request.method == "POST" and request.path.endswith(f"/issues/{first}/labels")
        for request in fake.requests
    )
    assert fake.site.issues[failing].labels == ["council", FAILED]
    assert WORKING not in fake.site.issues[failing].labels
    said = _comments(fake, failing)[-1]
    assert said.startswith(f"CLI Council could not finish task `issue-{failing}`: ")
    assert "broken on purpose" in said
    assert _comments(fake, waiter) == []  # closed before it started: never worked on
    (told,) = _comments(fake, stray)  # skipped, and told once, however often it was read
    assert told.startswith("CLI Council cannot take this issue as a task: `council` block: ")
    assert "adapters[0]: unknown adapter 'nope'" in told
    assert seen(repo, "issue.skipped", reason=told.split(": ", 1)[1].split("\n\n")[0])
    assert _comments(fake, 3) == [] and _comments(fake, pull) == []
    assert fake.site.issues[3].labels == ["docs"]

    # The token is in nothing the run wrote: its state, logs and events, or git's objects.
    for path in (repo / ".council").rglob("*"):
        if path.is_file() and not path.is_symlink():
            assert TOKEN.encode() not in path.read_bytes(), path
    objects = subprocess.run(
        ["git", "cat-file", "--batch-all-objects", "--batch"],
        cwd=repo,
        capture_output=True,
        check=True,
    ).stdout
    assert b"notes.txt" in objects or b"hello" in objects  # the objects were read
    assert TOKEN.encode() not in objects


def test_validate_says_a_source_without_a_forge_at_its_line(tmp_path: Path) -> None:
    new_repo(tmp_path)  # no origin remote
    config = tmp_path / "run.yaml"
    config.write_text(
        "repo: repo\nadapters: {fast: {type: scripted}}\ntasks: []\n"
        "sources:\n  - issues: {labels: [council]}\n"
    )
    registry = load_plugins(entry_points=[]).registry
    found = anyio.run(validate_config, config, registry, {})
    assert [(issue.line, issue.field) for issue in found.errors] == [(4, "sources")]
    assert "need a forge to read issues from" in found.errors[0].message
    assert "forge:" in found.errors[0].message

    config.write_text(config.read_text() + "forge: {repo: octo/widgets}\n")
    assert anyio.run(validate_config, config, registry, {}).errors == []


def test_validate_names_a_forge_type_no_plugin_provides(tmp_path: Path) -> None:
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(
        "repo: repo\nadapters: {fast: {type: scripted}}\ntasks: []\n"
        "sources:\n  - issues: {labels: [council]}\nforge:\n  type: gitlab\n"
    )
    registry = load_plugins(entry_points=[]).registry
    found = anyio.run(validate_config, config, registry, {})
    assert [(issue.line, issue.field) for issue in found.errors] == [(7, "forge.type")]
    assert "unknown forge type 'gitlab'" in found.errors[0].message
    assert "known: github" in found.errors[0].message


def test_an_issue_whose_id_a_config_task_has_stops_the_run_before_it_starts(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    repo = new_repo(tmp_path)
    fake.create_issue("Clash", "WRITE clash.txt x", labels=["council"])
    config = tmp_path / "run.yaml"
    text = CONFIG.format(
        gates=tmp_path, owner=OWNER, name=REPO, api_url=fake.api_url, variable=TOKEN_VARIABLE
    )
    config.write_text(text.replace("tasks: []", 'tasks: [{id: issue-1, prompt: "WRITE a x"}]'))
    done = subprocess.run(
        [*COUNCIL, "run", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**ENV, TOKEN_VARIABLE: TOKEN},
        timeout=patience(60),
    )
    assert done.returncode == 2, done.stderr
    assert "task id 'issue-1' of issue #1 is already a task of the run config" in done.stderr
    assert merged_tasks(repo) == []
    assert fake.site.issues[1].comments == []


def test_a_resumed_run_goes_on_hearing_and_reading_its_issues(
    tmp_path: Path, fake: FakeGitHub
) -> None:
    repo = new_repo(tmp_path)
    gates = tmp_path / "gates"
    gates.mkdir()
    gate = gates / "open"
    gated = fake.create_issue("Gated", f"WAIT_FOR {gate} 60\nWRITE gated.txt x", labels=["council"])
    waiter = fake.create_issue(
        "Waits", f"WRITE w.txt x\n```council\ndepends_on: [issue-{gated}]\n```", labels=["council"]
    )
    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.format(
            gates=gates, owner=OWNER, name=REPO, api_url=fake.api_url, variable=TOKEN_VARIABLE
        )
    )
    env = {**ENV, TOKEN_VARIABLE: TOKEN}

    def start(command: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [*COUNCIL, command, str(config), "--json"],
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )

    first = start("run")
    try:
        wait_for(lambda: seen(repo, "task.dispatched", task_id=f"issue-{gated}"), "the gate")
        first.send_signal(signal.SIGINT)  # stopped: both tasks back in the queue
        _, err = first.communicate(timeout=patience(30))
    finally:
        reap(first)
    assert first.returncode == 130, err

    fake.human_close(waiter)
    resumed = start("resume")
    try:
        wait_for(lambda: seen(repo, "issue.withdrawn", task_id=f"issue-{waiter}"), "withdrawal")
        gate.touch()
        out, err = resumed.communicate(timeout=patience(60))
    finally:
        reap(resumed)
    assert resumed.returncode == 1, err  # a task did not land: the cancelled one
    statuses = {task["task_id"]: task["status"] for task in json.loads(out)["tasks"]}
    assert statuses == {f"issue-{gated}": "done", f"issue-{waiter}": "cancelled"}
    said = _comments(fake, gated)
    assert said[-1].startswith(f"Task `issue-{gated}` landed on `main` in ")  # heard on resume
    assert fake.site.issues[gated].labels == ["council"]
    assert _comments(fake, waiter) == []
