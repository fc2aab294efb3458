"""Steering a real ``council serve`` from the issue, on the fake GitHub over a real bare
repository: with ``budgets.on_exceed: ask`` the run holds the task's next phase and asks on
the issue; an outsider's ``/council stop`` does nothing; a collaborator's ``/council go on``
gets a reaction and one answer, and the held work goes on to a landed pull request. Served
again with its comment cursor from before that command (the crash window between taking a
command and keeping the cursor), the command is not taken twice."""

from __future__ import annotations

import json
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path

import anyio
import pytest
from cli_process_helpers import COUNCIL, ENV, reap, task_states, wait_for
from issue_loop import issue_loop
from timing import patience

from orchestrator.forge.steering import CURSOR, STEERING, cursor_key
from orchestrator.models import TaskStatus
from orchestrator.spend.raising import RAISES
from orchestrator.state import FileStateStore
from orchestrator.testing.fake_github import FakeGitHub
from orchestrator.testing.fake_github.shapes import stamp

TOKEN = "ghp_fakeTokenForSteering0123456789abcdef"
OWNER, NAME = "octo", "steered"
ASKED = "Should it go on?"
TOOK = "CLI Council took `/council go on`"


@pytest.fixture
def world(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path]]:
    with issue_loop(tmp_path, owner=OWNER, name=NAME, token=TOKEN, config="serve.yaml") as found:
        gh, config = found
        text = config.read_text().replace(
            "workflow: {phases: [{name: build}]}",
            "workflow: {phases: [{name: plan}, {name: build}]}\n"
            "budgets: {run: {tokens: 5}, on_exceed: ask}",
        )
        config.write_text(text)
        yield gh, config


def serving(config: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [*COUNCIL, "serve", str(config)],
        cwd=config.parent,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
    )


def bodies(gh: FakeGitHub, number: int, start: str) -> list[str]:
    with gh.site.lock:
        return [c.body for c in gh.site.issues[number].comments if c.body.startswith(start)]


def asked(gh: FakeGitHub, number: int) -> bool:
    return any(ASKED in body for body in bodies(gh, number, "CLI Council paused"))


def pull_of(gh: FakeGitHub, issue: int) -> int | None:
    with gh.site.lock:
        for number, record in gh.site.issues.items():
            if record.pull is not None and record.pull.head == f"council/issue-{issue}":
                return number
    return None


def stop(process: subprocess.Popen[str]) -> tuple[int, str]:
    process.send_signal(signal.SIGINT)
    _, err = process.communicate(timeout=patience(60))
    return process.returncode, err


def store_of(config: Path) -> FileStateStore:
    repo = config.parent / "repo"
    return FileStateStore(repo / ".council" / "state")


def test_a_collaborators_go_on_lets_the_held_task_land_once_and_an_outsider_does_nothing(
    world: tuple[FakeGitHub, Path],
) -> None:
    gh, config = world
    repo = config.parent / "repo"
    gh.site.associations["alice"] = "COLLABORATOR"
    issue = gh.create_issue("One", body="WRITE one.txt one\n", labels=["council"])
    process = serving(config)
    try:
        wait_for(lambda: asked(gh, issue), f"the question on issue #{issue}")
        state = task_states(repo)[f"issue-{issue}"]
        assert state.status not in (TaskStatus.DONE, TaskStatus.IN_REVIEW)
        outsider = gh.site.add_comment(issue, "/council stop", "stranger")
        go_on = gh.site.add_comment(issue, "Fine by me.\n/council go on\n", "alice")
        wait_for(lambda: bool(bodies(gh, issue, TOOK)), "the answer to /council go on")
        wait_for(lambda: pull_of(gh, issue) is not None, "the held task's pull request")
        number = pull_of(gh, issue)
        assert number is not None
        gh.add_review(number, "alice", "APPROVED")
        wait_for(
            lambda: task_states(repo)[f"issue-{issue}"].status == TaskStatus.DONE,
            f"issue-{issue} landed",
        )
        code, err = stop(process)
    finally:
        reap(process)
    assert code == 0, err
    assert [(r.author, r.content) for r in gh.site.reactions.get(go_on.id, [])] == [(OWNER, "+1")]
    assert gh.site.reactions.get(outsider.id, []) == []
    [answer] = bodies(gh, issue, TOOK)
    assert "the run's budget is now" in answer and "held work goes on" in answer
    assert "Fine by me" not in answer

    # The restart reads from before the command, as after a crash between taking it and
    # keeping the cursor: the command's record keeps it from being done again.
    async def rewind() -> tuple[int, dict[str, object]]:
        async with store_of(config) as store:
            await store.put_record(CURSOR, cursor_key(f"{OWNER}/{NAME}"), {"since": since})
            taken = await store.get_record(STEERING, str(go_on.id))
            assert taken is not None and taken.data["state"] == "done"
            raised = await store.list_records(RAISES)
            assert len(raised) == 1
            return raised[0].version, dict(raised[0].data)

    since = stamp(outsider.created)
    version, limits = anyio.run(rewind)
    gh.site.clear_requests()
    process = serving(config)
    try:
        later = gh.site.add_comment(issue, "/council dance", "alice")
        try:
            wait_for(
                lambda: bool(bodies(gh, issue, "CLI Council did not take this")),
                "the answer to a command read after the restart",
            )
        except TimeoutError:
            process.kill()
            asked_for = [f"{r.method} {r.path} {r.status}" for r in gh.requests][-15:]
            raise AssertionError("\n".join(asked_for) + process.communicate()[1][-3000:]) from None
        code, err = stop(process)
    finally:
        reap(process)
    assert code == 0, err
    assert len(bodies(gh, issue, TOOK)) == 1
    assert [r.content for r in gh.site.reactions.get(go_on.id, [])] == ["+1"]
    assert gh.site.reactions.get(later.id, []) == []  # a bad command is answered, not taken

    async def after() -> tuple[int, dict[str, object]]:
        async with store_of(config) as store:
            [raised] = await store.list_records(RAISES)
            return raised.version, dict(raised.data)

    assert anyio.run(after) == (version, limits)
    assert json.dumps(limits)  # the raise stayed what the one command made it
    assert task_states(repo)[f"issue-{issue}"].status == TaskStatus.DONE
