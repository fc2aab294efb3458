"""Steering from the issue (``forge.steering``): the command lines a comment holds, and the
commands taken from the fake GitHub over HTTP by the real forge client, exactly once across
two readers sharing one store, only from people with write access, each acknowledged with a
reaction and answered once; the fake's new answers in GitHub's published shapes."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from githubkit_schemas.latest import models
from pydantic import TypeAdapter

from orchestrator.forge.steering import (
    STEERING,
    Command,
    Problem,
    Steering,
    SteeringRefused,
    parse,
)
from orchestrator.forge.trust import Trust, TrustRule
from orchestrator.state import FileStateStore
from tests.support.forge_helpers import OWNER, REPO, TOKEN, Rig, rig

# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ("/council go on", Command("go on")),
        ("/Council   GO   On  ", Command("go on")),
        ("Thanks for asking.\n\n/council stop\n", Command("stop")),
        ("  /council stop", Command("stop")),
        ("/council raise 5", Command("raise", 5.0)),
        ("/council raise $5.50", Command("raise", 5.5)),
        ("/council raise   $ 12", Command("raise", 12.0)),
        ("/council stop\n/council go on", Command("stop")),  # the first command line counts
        ("/council retry", Command("retry")),
        ("Flaky, try again:\n  /Council  RETRY ", Command("retry")),
        ("/council rebase", Command("rebase")),
        ("> /council retry\n/council rebase", Command("rebase")),
    ],
)
def test_a_command_on_a_line_of_its_own(body: str, expected: Command) -> None:
    assert parse(body) == expected


@pytest.mark.parametrize(
    "body",
    [
        "> /council stop",
        "> quoted\n>/council stop",
        "```\n/council stop\n```",
        "~~~text\n/council stop\n~~~",
        "    /council stop",  # an indented code block
        "please /council stop now",
        "Run `/council go on` when ready.",
        "/councilstop",
        "",
        "nothing to see",
    ],
)
def test_no_command_in_quotes_code_or_prose(body: str) -> None:
    assert parse(body) is None


def test_a_command_after_a_closed_fence_counts() -> None:
    assert parse("```\n/council stop\n```\n/council go on") == Command("go on")


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ("/council raise abc", "it was given `abc`"),
        ("/council raise", "it was given nothing"),
        ("/council raise 0", "above $0"),
        ("/council raise -3", "it was given `-3`"),
        ("/council dance", "`dance` is not a command"),
        ("/council", "the command is missing"),
        ("/council retry now", "`retry` is not a command"),
        ("/council rebased", "`/council rebase`"),
    ],
)
def test_a_bad_command_says_what_is_wrong(body: str, says: str) -> None:
    found = parse(body)
    assert isinstance(found, Problem)
    assert says in found.why
    assert len(found.why) < 200


def test_the_command_is_said_back_in_the_councils_words() -> None:
    assert Command("raise", 5.5).said() == "/council raise 5.5"
    assert Command("go on").said() == "/council go on"
    assert Command("retry").said() == "/council retry"
    assert Command("rebase").said() == "/council rebase"


# -- taken from the fake GitHub -----------------------------------------------------------------


class Recorder:
    """A helm that records what it was asked to do: issue ``n`` is task ``issue-n``."""

    def __init__(self, refuse: bool = False) -> None:
        self.done: list[tuple[str, str, float | None]] = []
        self.refuse = refuse

    async def task_of(self, number: int) -> str | None:
        return f"issue-{number}" if number < 100 else None

    async def go_on(self, task_id: str) -> str:
        return self._do("go on", task_id, None)

    async def raise_by(self, task_id: str, usd: float) -> str:
        return self._do("raise", task_id, usd)

    async def stop(self, task_id: str) -> str:
        return self._do("stop", task_id, None)

    async def retry(self, task_id: str) -> str:
        return self._do("retry", task_id, None)

    async def rebase(self, task_id: str) -> str:
        return self._do("rebase", task_id, None)

    def _do(self, verb: str, task_id: str, usd: float | None) -> str:
        if self.refuse:
            raise SteeringRefused("the task already ended")
        self.done.append((verb, task_id, usd))
        return f"did {verb}."


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


def _comments(r: Rig, number: int) -> list[str]:
    return [c.body for c in r.gh.site.issues[number].comments]


def _reactions(r: Rig, comment: int) -> list[tuple[str, str]]:
    return [(x.author, x.content) for x in r.gh.site.reactions.get(comment, [])]


def test_a_trusted_command_is_taken_once_by_two_readers_and_answered(
    r: Rig, tmp_path: Path
) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    r.gh.site.associations["alice"] = "COLLABORATOR"
    helm = Recorder()

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            first = Steering(r.forge, store, helm)
            second = Steering(r.forge, store, helm)
            assert await first.poll_once() == []  # notes where the conversation stands
            said = r.gh.site.add_comment(issue, "Yes.\n/council go on\n", "alice")
            async with anyio.create_task_group() as group:  # both read it at once
                group.start_soon(first.poll_once)
                group.start_soon(second.poll_once)
            assert await first.poll_once() == []
            assert await second.poll_once() == []
            record = await store.get_record(STEERING, str(said.id))
            assert record is not None
            assert record.data["state"] == "done"
            assert record.data["command"] == "/council go on"
            # A reader started later (a restart) reads from the kept cursor: not again.
            third = Steering(r.forge, store, helm)
            assert await third.poll_once() == []

            assert helm.done == [("go on", f"issue-{issue}", None)]
            assert _reactions(r, said.id) == [(OWNER, "+1")]
            answers = [body for body in _comments(r, issue) if body.startswith("CLI Council")]
            assert answers == [
                f"CLI Council took `/council go on` for task `issue-{issue}`: did go on."
            ]

    anyio.run(main)


def test_an_outsiders_command_does_nothing(r: Rig, tmp_path: Path) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    r.gh.site.associations["visitor"] = "CONTRIBUTOR"
    helm = Recorder()

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            steering = Steering(r.forge, store, helm)
            await steering.poll_once()
            ids = [
                r.gh.site.add_comment(issue, "/council stop", who).id
                for who in ("stranger", "visitor")
            ]
            assert await steering.poll_once() == []
            for comment in ids:
                assert await store.get_record(STEERING, str(comment)) is None
                assert _reactions(r, comment) == []

    anyio.run(main)
    assert helm.done == []
    assert _comments(r, issue) == ["/council stop", "/council stop"]


def test_whose_command_counts_is_the_runs_trust(r: Rig, tmp_path: Path) -> None:
    """Not the comment's association alone: a COLLABORATOR invited to read is nobody's voice,
    and ``forge.trusted`` (a named login, a team) decides as it does for reviews."""
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    r.gh.set_association("reader", "COLLABORATOR", role="read")
    r.gh.set_team("acme", "ops", ["dana"])
    helm = Recorder()

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            default = Steering(r.forge, store, helm)
            await default.poll_once()
            ignored = r.gh.site.add_comment(issue, "/council stop", "reader")
            assert await default.poll_once() == []
            assert await store.get_record(STEERING, str(ignored.id)) is None
            rule = TrustRule.of(["ci-helper", "@acme/ops"])
            named = Steering(r.forge, store, helm, trust=Trust(r.forge, rule))
            await named.poll_once()
            by_login = r.gh.site.add_comment(issue, "/council go on", "ci-helper")
            by_team = r.gh.site.add_comment(issue, "/council stop", "dana")
            by_owner = r.gh.site.add_comment(issue, "/council raise 1", OWNER)  # not named
            taken = await named.poll_once()
            assert [t.comment for t in taken] == [by_login.id, by_team.id]
            assert await store.get_record(STEERING, str(by_owner.id)) is None

    anyio.run(main)
    assert helm.done == [("go on", f"issue-{issue}", None), ("stop", f"issue-{issue}", None)]


def test_a_bad_raise_gets_a_short_answer_and_nothing_is_done(r: Rig, tmp_path: Path) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    helm = Recorder()

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            steering = Steering(r.forge, store, helm)
            await steering.poll_once()
            r.gh.site.add_comment(issue, "/council raise abc", OWNER)
            r.gh.site.add_comment(issue, "> /council stop\nno thanks", OWNER)
            await steering.poll_once()
            await steering.poll_once()

    anyio.run(main)
    assert helm.done == []
    answers = [body for body in _comments(r, issue) if body.startswith("CLI Council")]
    assert len(answers) == 1
    assert answers[0].startswith("CLI Council did not take this: `/council raise` takes an amount")
    assert "abc" in answers[0]


def test_a_refused_command_says_why_and_other_issues_are_not_the_runs(
    r: Rig, tmp_path: Path
) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    helm = Recorder(refuse=True)

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            steering = Steering(r.forge, store, helm)
            await steering.poll_once()
            r.gh.site.add_comment(issue, "/council raise $2.50", OWNER)
            taken = await steering.poll_once()
            assert [t.command for t in taken] == ["/council raise 2.5"]

    anyio.run(main)
    answers = [body for body in _comments(r, issue) if body.startswith("CLI Council")]
    assert answers == [
        f"CLI Council could not do `/council raise 2.5` for task `issue-{issue}`: "
        "the task already ended"
    ]


def test_retry_and_rebase_reach_the_helm_once_each_and_are_answered(r: Rig, tmp_path: Path) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    helm = Recorder()

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            steering = Steering(r.forge, store, helm)
            await steering.poll_once()
            retry = r.gh.site.add_comment(issue, "/council retry", OWNER)
            rebase = r.gh.site.add_comment(issue, "/council rebase", OWNER)
            taken = await steering.poll_once()
            assert [t.command for t in taken] == ["/council retry", "/council rebase"]
            assert await Steering(r.forge, store, helm).poll_once() == []
            for comment in (retry, rebase):
                assert _reactions(r, comment.id) == [(OWNER, "+1")]

    anyio.run(main)
    assert helm.done == [("retry", f"issue-{issue}", None), ("rebase", f"issue-{issue}", None)]
    answers = [body for body in _comments(r, issue) if body.startswith("CLI Council")]
    assert answers == [
        f"CLI Council took `/council retry` for task `issue-{issue}`: did retry.",
        f"CLI Council took `/council rebase` for task `issue-{issue}`: did rebase.",
    ]


def test_an_idle_poll_is_one_conditional_request(r: Rig, tmp_path: Path) -> None:
    r.gh.create_issue("Work", "body", labels=["council"])

    async def main() -> None:
        async with FileStateStore(tmp_path / "state") as store:
            steering = Steering(r.forge, store, Recorder())
            await steering.poll_once()
            await steering.poll_once()
            before = r.forge.requests()
            await steering.poll_once()
            after = r.forge.requests()
            assert (after.full, after.not_modified) == (before.full, before.not_modified + 1)

    anyio.run(main)


# -- the fake's new answers in GitHub's shapes ---------------------------------------------------


def _call(r: Rig, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = f"{r.gh.api_url}/repos/{OWNER}/{REPO}{path}"
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {TOKEN}")
    request.add_header("Content-Type", "application/json")
    with urllib.request.urlopen(request, timeout=10) as answer:
        return answer.status, json.loads(answer.read())


def test_the_repository_comments_and_reactions_in_githubs_shapes(r: Rig) -> None:
    issue = r.gh.create_issue("Work", "body", labels=["council"])
    r.gh.site.associations["bob"] = "MEMBER"
    first = r.gh.site.add_comment(issue, "one", "bob")
    r.gh.site.add_comment(issue, "two", "stranger")
    status, listed = _call(r, "GET", "/issues/comments?sort=created&direction=asc")
    assert status == 200
    found = TypeAdapter(list[models.IssueComment]).validate_python(listed)
    assert [(c.body, c.author_association) for c in found] == [("one", "MEMBER"), ("two", "NONE")]
    since = listed[1]["updated_at"]
    _, later = _call(r, "GET", f"/issues/comments?since={since}")
    assert [c["body"] for c in later] == ["two"]
    status, made = _call(r, "POST", f"/issues/comments/{first.id}/reactions", {"content": "+1"})
    assert status == 201
    assert models.Reaction.model_validate(made).content == "+1"
    status, again = _call(r, "POST", f"/issues/comments/{first.id}/reactions", {"content": "+1"})
    assert (status, again["id"]) == (200, made["id"])
