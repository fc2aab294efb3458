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

from orchestrator.forge.steering import CURSOR, STEERING, cursor_key
from orchestrator.models import TaskStatus
from orchestrator.spend.raising import RAISES
from orchestrator.state import FileStateStore
from orchestrator.testing.fake_github import FakeGitHub
from orchestrator.testing.fake_github.shapes import stamp
from tests.support.cli_process_helpers import COUNCIL, ENV, reap, task_states, wait_for
from tests.support.issue_loop import issue_loop
from tests.support.timing import patience

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
            # the plan's call (about 180 tokens) fits; the build's, forecast at the estimate
            # until the ledger has one, does not: held before it starts, asked on the issue
            "budgets: {run: {tokens: 200}, estimate: {tokens: 100}, on_exceed: ask}",
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
    # room for the held build's forecast (the estimate, 100) and the configured 200 beyond
    # what was spent: the held call starts once, and is not held again on its next tick
    assert "room for the held call's forecast and its configured limit once more" in answer
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


# -- /council retry and /council rebase ----------------------------------------------------------


@pytest.fixture
def plain(tmp_path: Path) -> Iterator[tuple[FakeGitHub, Path]]:
    """The loop's config as it is (a build, no retries), with rate limits given up on at once:
    a task whose CLI says it is rate limited for six seconds ends ``failed``
    (``rate_limited``), and its adapter can be called again six seconds later. (Six, not
    one or two: the CLI gives its reset in whole seconds, and a run that reads it after the
    reset passed, as a loaded machine may, parks instead of failing.)"""
    with issue_loop(tmp_path, owner=OWNER, name=NAME, token=TOKEN, config="serve.yaml") as found:
        gh, config = found
        config.write_text(config.read_text() + "rate_limits: {max_parked_time: 0.5}\n")
        yield gh, config


def rewind(config: Path, since: str, comment: int) -> str:
    """Put the comment cursor back to ``since`` (as after a crash between taking a command and
    keeping the cursor); the taken record's state of ``comment``."""

    async def main() -> str:
        async with store_of(config) as store:
            await store.put_record(CURSOR, cursor_key(f"{OWNER}/{NAME}"), {"since": since})
            taken = await store.get_record(STEERING, str(comment))
            assert taken is not None
            return str(taken.data["state"])

    return anyio.run(main)


def served_again(gh: FakeGitHub, config: Path, issue: int) -> None:
    """Serve once more until a comment written after the restart was read (answered), then
    stop: every command from the rewound cursor on was read again by then."""
    process = serving(config)
    try:
        gh.site.add_comment(issue, "/council dance", "alice")
        wait_for(
            lambda: bool(bodies(gh, issue, "CLI Council did not take this")),
            "the answer to a command read after the restart",
        )
        code, err = stop(process)
    finally:
        reap(process)
    assert code == 0, err


def test_a_failed_task_is_retried_by_a_collaborator_and_lands_once(
    plain: tuple[FakeGitHub, Path],
) -> None:
    gh, config = plain
    repo = config.parent / "repo"
    # Its CLI is rate limited once (its conversation remembers it): given up on at once.
    issue = gh.create_issue(
        "One", body="RATE_LIMIT reset=6\nWRITE one.txt one\n", labels=["council"]
    )
    task = f"issue-{issue}"
    process = serving(config)
    try:
        wait_for(
            lambda: (
                (s := task_states(repo).get(task)) is not None and s.status == TaskStatus.FAILED
            ),
            f"{task} failed on its rate limit",
        )
        failed = task_states(repo)[task]
        assert failed.metadata.get("outcome") == "rate_limited"
        assert pull_of(gh, issue) is None
        early = gh.site.add_comment(issue, "/council rebase", "alice")  # no pull request yet
        wait_for(lambda: bool(bodies(gh, issue, "CLI Council could not do")), "the refusal")
        retry = gh.site.add_comment(issue, "/council retry", "alice")
        wait_for(lambda: bool(bodies(gh, issue, "CLI Council took `/council retry`")), "the answer")
        wait_for(lambda: pull_of(gh, issue) is not None, "the retried task's pull request")
        number = pull_of(gh, issue)
        assert number is not None
        gh.add_review(number, "alice", "APPROVED")
        wait_for(lambda: task_states(repo)[task].status == TaskStatus.DONE, f"{task} landed")
        code, err = stop(process)
    finally:
        reap(process)
    assert code == 0, err
    [refused] = bodies(gh, issue, "CLI Council could not do")
    assert "`/council rebase`" in refused and "without a pull request" in refused
    [answer] = bodies(gh, issue, "CLI Council took `/council retry`")
    assert "queued again with its whole retry allowance (it had ended failed)" in answer
    assert "kept worktree" in answer
    assert [r.content for r in gh.site.reactions.get(retry.id, [])] == ["+1"]
    done = task_states(repo)[task]
    assert done.attempt == failed.attempt + 1
    assert "outcome" not in done.metadata and "failures" not in done.metadata

    assert rewind(config, stamp(early.created), retry.id) == "done"
    served_again(gh, config, issue)
    assert len(bodies(gh, issue, "CLI Council took `/council retry`")) == 1
    assert len(bodies(gh, issue, "CLI Council could not do")) == 1
    assert [r.content for r in gh.site.reactions.get(retry.id, [])] == ["+1"]
    after = task_states(repo)[task]
    assert (after.status, after.attempt) == (TaskStatus.DONE, done.attempt)


def remote_of(repo: Path) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), "remote", "get-url", "origin"],
        check=True, capture_output=True, text=True,
    ).stdout.strip()  # fmt: skip


def move_base(remote: str, where: Path) -> str:
    """A commit of someone else's on the remote's main; its sha."""

    def git(*args: str) -> str:
        done = subprocess.run(
            ["git", "-C", str(where), *args], check=True, capture_output=True, text=True
        )
        return done.stdout.strip()

    subprocess.run(["git", "clone", "-q", remote, str(where)], check=True, capture_output=True)
    git("config", "user.email", "bob@example.com")
    git("config", "user.name", "Bob")
    (where / "elsewhere.txt").write_text("landed meanwhile\n")
    git("add", "elsewhere.txt")
    git("commit", "-q", "-m", "Someone else's work")
    git("push", "-q", "origin", "HEAD:main")
    return git("rev-parse", "HEAD")


def test_a_rebase_builds_the_open_pull_request_again_on_the_moved_base_once(
    plain: tuple[FakeGitHub, Path], tmp_path: Path
) -> None:
    gh, config = plain
    repo = config.parent / "repo"
    issue = gh.create_issue("Two", body="WRITE two.txt two\n", labels=["council"])
    task = f"issue-{issue}"
    process = serving(config)
    try:
        wait_for(lambda: pull_of(gh, issue) is not None, f"{task}'s pull request")
        number = pull_of(gh, issue)
        assert number is not None
        wait_for(
            lambda: task_states(repo)[task].status == TaskStatus.IN_REVIEW, f"{task} in review"
        )
        with gh.site.lock:
            first_head = gh.site.issues[number].pull.head_sha  # type: ignore[union-attr]
        moved = move_base(remote_of(repo), tmp_path / "bob")
        rebase = gh.site.add_comment(issue, "Please:\n/council rebase\n", "alice")
        wait_for(lambda: bool(bodies(gh, issue, "CLI Council took `/council rebase`")), "answer")

        def pushed_again() -> bool:
            with gh.site.lock:
                head = gh.site.issues[number].pull.head_sha  # type: ignore[union-attr]
            return head != first_head and task_states(repo)[task].status == TaskStatus.IN_REVIEW

        wait_for(pushed_again, f"the rebuilt head pushed to #{number}")
        with gh.site.lock:
            new_head = gh.site.issues[number].pull.head_sha  # type: ignore[union-attr]
        contains = subprocess.run(
            ["git", "-C", str(repo), "merge-base", "--is-ancestor", moved, new_head],
            capture_output=True,
        )
        assert contains.returncode == 0, "the rebuilt head is not on the moved base"
        gh.add_review(number, "alice", "APPROVED")
        wait_for(lambda: task_states(repo)[task].status == TaskStatus.DONE, f"{task} landed")
        code, err = stop(process)
    finally:
        reap(process)
    assert code == 0, err
    [answer] = bodies(gh, issue, "CLI Council took `/council rebase`")
    assert "pushed to the same pull request #" in answer and answer.endswith(f"{number}.")
    assert pull_of(gh, issue) == number  # one pull request, never a second
    done = task_states(repo)[task]
    assert done.metadata["resolve_rounds"] == 1

    assert rewind(config, stamp(rebase.created), rebase.id) == "done"
    served_again(gh, config, issue)
    assert len(bodies(gh, issue, "CLI Council took `/council rebase`")) == 1
    assert [r.content for r in gh.site.reactions.get(rebase.id, [])] == ["+1"]
    after = task_states(repo)[task]
    assert (after.status, after.attempt) == (TaskStatus.DONE, done.attempt)
