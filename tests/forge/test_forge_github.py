"""The githubkit-backed forge against the fake GitHub, over a real bare repository: each method
of the ``Forge`` protocol, and the typed outcomes of a merge."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.errors import ForgeNotFound, ForgeRefused
from orchestrator.forge.base import FAILED, IN_REVIEW, WORKING, Forge, MergeMethod, approvals
from orchestrator.forge.github import GitHubForge
from tests.support.forge_helpers import OWNER, Rig, rig
from tests.support.merge_repo import git


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


def test_the_client_is_a_forge(r: Rig) -> None:
    forge: Forge = r.forge
    assert forge.repo == f"{OWNER}/widgets"


async def test_issues_are_listed_without_pull_requests(r: Rig) -> None:
    first = r.gh.create_issue("Fix the parser", "It breaks on tabs.", labels=["council"])
    r.gh.create_issue("Unrelated", labels=["docs"])
    closed = r.gh.create_issue("Old", labels=["council"])
    r.gh.human_close(closed)
    r.branch("feature", {"a.txt": "a\n"})
    pull = r.gh.open_pull("feature", "main", "A pull request", author="bob")
    r.gh.site.issues[pull].labels.append("council")

    listed = await r.forge.list_issues(labels=["council"])
    assert [issue.number for issue in listed] == [first]
    issue = listed[0]
    assert (issue.title, issue.body, issue.state, issue.labels) == (
        "Fix the parser",
        "It breaks on tabs.",
        "open",
        ("council",),
    )
    everything = await r.forge.list_issues(state="all")
    assert sorted(issue.number for issue in everything) == [1, 2, 3]
    assert [i.number for i in await r.forge.list_issues(state="closed")] == [closed]
    assert pull not in [issue.number for issue in everything]


async def test_issue_lists_follow_pages(r: Rig) -> None:
    for n in range(105):
        r.gh.create_issue(f"issue {n}", labels=["bulk"])
    listed = await r.forge.list_issues(labels=["bulk"])
    assert len(listed) == 105
    assert len({issue.number for issue in listed}) == 105


async def test_get_comment_and_labels(r: Rig) -> None:
    number = r.gh.create_issue("Task", labels=["council"])
    assert (await r.forge.get_issue(number)).title == "Task"
    made = await r.forge.comment(number, "Working on it.")
    assert made.body == "Working on it."
    assert [c.body for c in r.gh.site.issues[number].comments] == ["Working on it."]

    assert await r.forge.add_labels(number, [WORKING]) == ("council", WORKING)
    assert await r.forge.remove_label(number, WORKING) == ("council",)  # what is left
    assert await r.forge.remove_label(number, WORKING) is None  # not there: nothing happens
    assert await r.forge.add_labels(number, [IN_REVIEW, FAILED]) == ("council", IN_REVIEW, FAILED)
    assert (await r.forge.get_issue(number)).labels == ("council", IN_REVIEW, FAILED)

    await r.forge.close(number)
    assert (await r.forge.get_issue(number)).state == "closed"


async def test_a_missing_issue_is_not_found(r: Rig) -> None:
    with pytest.raises(ForgeNotFound) as caught:
        await r.forge.get_issue(99)
    assert caught.value.status == 404
    assert "GET /repos/octo/widgets/issues/99" in str(caught.value)


async def test_open_find_and_get_a_pull_request(r: Rig) -> None:
    head = r.branch("council/task-1", {"a.txt": "a\n"})
    assert await r.forge.find_pull("council/task-1") is None
    opened = await r.forge.open_pull(
        title="Task 1", body="Closes #1", head="council/task-1", base="main"
    )
    assert opened.created
    pull = opened.pull
    assert (pull.head, pull.head_sha, pull.base, pull.state) == (
        "council/task-1",
        head,
        "main",
        "open",
    )
    assert pull.mergeable is True and not pull.merged

    again = await r.forge.open_pull(title="Task 1", body="", head="council/task-1", base="main")
    assert not again.created and again.pull.number == pull.number  # the 422 became a lookup
    found = await r.forge.find_pull("council/task-1")
    assert found is not None and found.number == pull.number
    assert (await r.forge.get_pull(pull.number)).title == "Task 1"


async def test_open_pull_for_a_missing_branch_is_refused(r: Rig) -> None:
    with pytest.raises(ForgeRefused) as caught:
        await r.forge.open_pull(title="x", body="", head="nowhere", base="main")
    assert caught.value.status == 422


async def test_reviews_latest_per_reviewer_and_comments(r: Rig) -> None:
    r.branch("feature", {"a.py": "one\ntwo\nthree\n"})
    number = r.gh.open_pull("feature", "main", "Feature")
    r.gh.add_review(number, "alice", "CHANGES_REQUESTED", "no", comments=[("a.py", 2, "why two?")])
    r.gh.add_review(number, "bob", "APPROVED")
    r.gh.add_review(number, "alice", "APPROVED", "fine now")
    r.gh.add_review(number, "bob", "COMMENTED", "a remark")  # does not undo bob's approval

    reviews = await r.forge.list_reviews(number)
    assert [(review.reviewer, review.state) for review in reviews] == [
        ("alice", "CHANGES_REQUESTED"),
        ("bob", "APPROVED"),
        ("alice", "APPROVED"),
        ("bob", "COMMENTED"),
    ]
    assert sorted(approvals(reviews)) == ["alice", "bob"]
    assert reviews[0].commit_id == r.gh.git.tip("feature")

    comments = await r.forge.list_review_comments(number)
    assert [(c.reviewer, c.path, c.line, c.body) for c in comments] == [
        ("alice", "a.py", 2, "why two?")
    ]
    assert comments[0].review_id == reviews[0].id


async def test_checks_combine_runs_and_statuses(r: Rig) -> None:
    sha = r.branch("feature", {"a.txt": "a\n"})
    assert (await r.forge.checks(sha)).state == "none"
    log = "\n".join(f"line {n}" for n in range(100)) + "\nFAILED test_parser"
    r.gh.set_check_run(sha, "tests", conclusion="failure", summary="1 failed", text=log)
    r.gh.set_check_run(sha, "lint", status="in_progress")
    r.gh.set_status(sha, "ci/legacy", "success", "all good")

    checks = await r.forge.checks(sha)
    assert checks.state == "failure"
    by_name = {result.name: result for result in checks.results}
    assert set(by_name) == {"tests", "lint", "ci/legacy"}
    failing = by_name["tests"]
    assert (failing.kind, failing.conclusion, failing.summary) == (
        "check_run",
        "failure",
        "1 failed",
    )
    assert failing.text_tail.endswith("FAILED test_parser")
    assert "line 0\n" not in failing.text_tail  # only the tail is kept
    assert by_name["lint"].state == "pending"
    assert (by_name["ci/legacy"].kind, by_name["ci/legacy"].state) == ("status", "success")
    assert [result.name for result in checks.failing] == ["tests"]

    r.gh.set_check_run(sha, "tests", conclusion="success")
    r.gh.set_check_run(sha, "lint", conclusion="success")
    assert (await r.forge.checks(sha)).state == "success"


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
async def test_merge_lands_on_the_base_in_the_bare_repository(r: Rig, method: MergeMethod) -> None:
    head = r.branch("feature", {"new.txt": "new\n"}, "add new.txt")
    before = r.gh.git.tip("main")
    pull = (await r.forge.open_pull(title="T", body="", head="feature", base="main")).pull
    outcome = await r.forge.merge_pull(pull.number, method=method, expected_sha=head)
    assert outcome.kind == "merged"
    assert outcome.sha == r.gh.git.tip("main") != before
    assert git(r.bare, "show", f"{outcome.sha}:new.txt") == "new"
    parents = git(r.bare, "log", "-1", "--format=%P", str(outcome.sha)).split()
    assert len(parents) == (2 if method == "merge" else 1)
    merged = await r.forge.get_pull(pull.number)
    assert (merged.merged, merged.state) == (True, "closed")


@pytest.mark.parametrize("method", ["merge", "squash", "rebase"])
async def test_a_conflicting_pull_request_is_not_mergeable(r: Rig, method: MergeMethod) -> None:
    r.branch("left", {"shared.txt": "left\n"})
    right = r.branch("right", {"shared.txt": "right\n"})
    r.gh.human_merge(r.gh.open_pull("left", "main", "Left"))
    pull = (await r.forge.open_pull(title="Right", body="", head="right", base="main")).pull
    assert pull.mergeable is False and pull.mergeable_state == "dirty"
    before = r.gh.git.tip("main")
    outcome = await r.forge.merge_pull(pull.number, method=method, expected_sha=right)
    assert outcome.kind == "not_mergeable"
    assert "not mergeable" in outcome.message
    assert r.gh.git.tip("main") == before


async def test_a_force_push_makes_the_expected_head_stale(r: Rig) -> None:
    first = r.branch("feature", {"a.txt": "a\n"})
    pull = (await r.forge.open_pull(title="T", body="", head="feature", base="main")).pull
    pushed = r.gh.force_push("feature", {"a.txt": "rewritten\n"})
    outcome = await r.forge.merge_pull(pull.number, method="squash", expected_sha=first)
    assert outcome.kind == "head_changed"
    assert "Head branch was modified" in outcome.message
    assert (await r.forge.get_pull(pull.number)).head_sha == pushed


async def test_branch_protection_refuses_until_approved_and_green(r: Rig) -> None:
    head = r.branch("feature", {"a.txt": "a\n"})
    pull = (await r.forge.open_pull(title="T", body="", head="feature", base="main")).pull
    r.gh.protect("main", required_approvals=1, required_checks=["tests"])
    assert (await r.forge.get_pull(pull.number)).mergeable_state == "blocked"
    refused = await r.forge.merge_pull(pull.number, method="merge", expected_sha=head)
    assert (refused.kind, refused.message) == (
        "not_mergeable",
        "At least 1 approving review is required by reviewers with write access.",
    )
    r.gh.add_review(pull.number, "alice", "APPROVED")
    refused = await r.forge.merge_pull(pull.number, method="merge", expected_sha=head)
    assert refused.message == 'Required status check "tests" is expected.'
    r.gh.set_check_run(head, "tests")
    assert (
        await r.forge.merge_pull(pull.number, method="merge", expected_sha=head)
    ).kind == "merged"


async def test_a_pull_request_a_person_merged_or_closed(r: Rig) -> None:
    head = r.branch("feature", {"a.txt": "a\n"})
    pull = (await r.forge.open_pull(title="T", body="", head="feature", base="main")).pull
    r.gh.human_merge(pull.number)
    again = await r.forge.merge_pull(pull.number, method="merge", expected_sha=head)
    assert again.kind == "not_mergeable"
    assert await r.forge.find_pull("feature") is None

    r.branch("other", {"b.txt": "b\n"})
    other = (await r.forge.open_pull(title="O", body="", head="other", base="main")).pull
    r.gh.human_close(other.number)
    seen = await r.forge.get_pull(other.number)
    assert (seen.state, seen.merged) == ("closed", False)


async def test_a_protection_rule_that_refuses_every_merge(r: Rig) -> None:
    head = r.branch("feature", {"a.txt": "a\n"})
    pull = (await r.forge.open_pull(title="T", body="", head="feature", base="main")).pull
    r.gh.protect("main", refuse="Changes must be made through the merge queue")
    outcome = await r.forge.merge_pull(pull.number, method="squash", expected_sha=head)
    assert (outcome.kind, outcome.message) == (
        "not_mergeable",
        "Changes must be made through the merge queue",
    )
    assert (await r.forge.get_pull(pull.number)).state == "open"


async def test_requests_share_one_tls_context_made_once_a_process(
    r: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    # githubkit makes an HTTP client per request; each made its own TLS context, loading the
    # CA bundle again: 44 ms of CPU a request, most of an idle `council serve`'s poll.
    made: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def counted(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        made.append(self)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", counted)
    second = GitHubForge(f"{OWNER}/widgets", "ghp_other0123456789", api_url=r.gh.api_url)
    for _ in range(3):
        await r.forge.list_issues(labels=["council"], state="open")
    assert made == []  # none loaded again by a request
    assert second._client.config.ssl_verify is r.forge._client.config.ssl_verify
