"""Every answer of the fake GitHub parses with githubkit's models of GitHub's published REST
schema, so the fake cannot drift from the real API's shapes unnoticed: the raw JSON is fetched
over HTTP and validated, and dropping any field the schema requires fails validation."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest
from githubkit_schemas.latest import models
from pydantic import BaseModel, TypeAdapter, ValidationError

from orchestrator.forge.public_text import own
from tests.support.forge_helpers import OWNER, REPO, TOKEN, Rig, rig


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


def _call(r: Rig, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    url = (
        f"{r.gh.api_url}{path}"
        if path.startswith("/orgs/")
        else (f"{r.gh.api_url}/repos/{OWNER}/{REPO}{path}")
    )
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method)
    request.add_header("Authorization", f"token {TOKEN}")
    request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=10) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as failed:
        return failed.code, json.loads(failed.read())


def _world(r: Rig) -> dict[str, tuple[Any, Any]]:
    """One of each answer the fake gives: name -> (model, JSON)."""
    issue = r.gh.create_issue("An issue", "Body", labels=["council"])
    r.gh.set_team("acme", "core", ["alice"])
    sha = r.branch("feature", {"a.py": "x = 1\n"})
    r.branch("stack-base", {"b.py": "y = 1\n"})
    status, pull = _call(
        r, "POST", "/pulls", {"title": "T", "body": "", "head": "feature", "base": "main"}
    )
    assert status == 201
    number = pull["number"]
    r.gh.add_review(number, "alice", "CHANGES_REQUESTED", "no", comments=[("a.py", 1, "why?")])
    r.gh.set_check_run(sha, "tests", conclusion="failure", summary="bad", text="boom")
    r.gh.set_check_run(sha, "lint", status="queued")
    r.gh.set_status(sha, "ci", "pending", "waiting")
    answers = {
        "issues": (list[models.Issue], _call(r, "GET", "/issues?state=all")),
        "issue": (models.Issue, _call(r, "GET", f"/issues/{issue}")),
        "comment": (
            models.IssueComment,
            _call(r, "POST", f"/issues/{issue}/comments", {"body": "hi"}),
        ),
        "comments": (list[models.IssueComment], _call(r, "GET", f"/issues/{issue}/comments")),
        "labels": (
            list[models.Label],
            _call(r, "POST", f"/issues/{issue}/labels", {"labels": ["council:working"]}),
        ),
        "unlabel": (
            list[models.Label],
            _call(r, "DELETE", f"/issues/{issue}/labels/council%3Aworking"),
        ),
        "events": (list[models.IssueEvent], _call(r, "GET", f"/issues/{issue}/events")),
        "team": (
            models.TeamMembership,
            _call(r, "GET", "/orgs/acme/teams/core/memberships/alice"),
        ),
        "not_in_team": (
            models.BasicError,
            _call(r, "GET", "/orgs/acme/teams/core/memberships/bob"),
        ),
        "pulls": (list[models.PullRequestSimple], _call(r, "GET", f"/pulls?head={OWNER}:feature")),
        "pull": (models.PullRequest, _call(r, "GET", f"/pulls/{number}")),
        "already_exists": (
            models.ValidationError,
            _call(r, "POST", "/pulls", {"title": "x", "head": "feature", "base": "main"}),
        ),
        "reviews": (list[models.PullRequestReview], _call(r, "GET", f"/pulls/{number}/reviews")),
        "review_comments": (
            list[models.PullRequestReviewComment],
            _call(r, "GET", f"/pulls/{number}/comments"),
        ),
        "check_runs": (
            models.ReposOwnerRepoCommitsRefCheckRunsGetResponse200,
            _call(r, "GET", f"/commits/{sha}/check-runs"),
        ),
        "status": (models.CombinedCommitStatus, _call(r, "GET", f"/commits/{sha}/status")),
        "permission": (
            models.RepositoryCollaboratorPermission,
            _call(r, "GET", "/collaborators/alice/permission"),
        ),
        "not_a_user": (models.BasicError, _call(r, "GET", "/collaborators/a%5Bb/permission")),
        "head_changed": (
            models.BasicError,
            _call(r, "PUT", f"/pulls/{number}/merge", {"merge_method": "merge", "sha": "0" * 40}),
        ),
        "retargeted": (
            models.PullRequest,
            _call(r, "PATCH", f"/pulls/{number}", {"base": "stack-base"}),
        ),
        "no_such_base": (
            models.ValidationError,
            _call(r, "PATCH", f"/pulls/{number}", {"base": "nowhere"}),
        ),
        "back_to_main": (
            models.PullRequest,
            _call(r, "PATCH", f"/pulls/{number}", {"base": "main"}),
        ),
        "reviewers_requested": (
            models.PullRequestSimple,
            _call(r, "POST", f"/pulls/{number}/requested_reviewers", {"reviewers": ["bob"]}),
        ),
        "reviewer_refused": (
            models.BasicError,
            _call(r, "POST", f"/pulls/{number}/requested_reviewers", {"reviewers": ["eve"]}),
        ),
        "merge": (
            models.PullRequestMergeResult,
            _call(r, "PUT", f"/pulls/{number}/merge", {"merge_method": "squash", "sha": sha}),
        ),
        "merged_pull": (models.PullRequest, _call(r, "GET", f"/pulls/{number}")),
        "closed_pull": (
            models.PullRequest,
            _call(r, "PATCH", f"/pulls/{number}", {"state": "closed"}),
        ),
        "closed": (models.Issue, _call(r, "PATCH", f"/issues/{issue}", {"state": "closed"})),
        "not_found": (models.BasicError, _call(r, "GET", "/issues/999")),
    }
    return {name: (model, call[1]) for name, (model, call) in answers.items()}


def test_every_answer_parses_with_githubkits_models(r: Rig) -> None:
    for name, (model, data) in _world(r).items():
        try:
            TypeAdapter(model).validate_python(data)
        except ValidationError as exc:
            pytest.fail(f"{name}: {exc}")


def test_issue_list_carries_the_pull_request_as_github_does(r: Rig) -> None:
    world = _world(r)
    issues = TypeAdapter(list[models.Issue]).validate_python(world["issues"][1])
    kinds = {issue.number: bool(issue.pull_request) for issue in issues}
    assert kinds == {1: False, 2: True}


def test_an_issues_label_events_say_who_put_each_label_on(r: Rig) -> None:
    world = _world(r)
    kinds = [(e["event"], e["label"]["name"], e["actor"]["login"]) for e in world["events"][1]]
    assert kinds == [
        ("labeled", "council", OWNER),  # at its creation, by its author
        ("labeled", "council:working", OWNER),  # POST labels: the token's user
        ("unlabeled", "council:working", OWNER),
    ]
    assert world["team"][1]["state"] == "active"
    assert world["not_in_team"][1]["message"] == "Not Found"


def test_the_merge_and_conflict_answers(r: Rig) -> None:
    world = _world(r)
    assert world["head_changed"][1]["message"] == (
        "Head branch was modified. Review and try the merge again."
    )
    assert world["merge"][1]["merged"] is True
    merged = models.PullRequest.model_validate(world["merged_pull"][1])
    assert merged.merged and merged.state == "closed" and merged.merged_by is not None
    errors = world["already_exists"][1]["errors"]
    assert errors[0]["message"] == f"A pull request already exists for {OWNER}:feature."


def _required(model: type[BaseModel]) -> list[str]:
    return [
        field.alias or name for name, field in model.model_fields.items() if field.is_required()
    ]


def test_a_missing_required_field_would_fail(r: Rig) -> None:
    """The check above has teeth: each required field of each object, left out, is refused."""
    world = _world(r)
    objects: list[tuple[type[BaseModel], dict[str, Any]]] = [
        (models.Issue, world["issue"][1]),
        (models.PullRequest, world["pull"][1]),
        (models.PullRequestReview, world["reviews"][1][0]),
        (models.PullRequestReviewComment, world["review_comments"][1][0]),
        (models.RepositoryCollaboratorPermission, world["permission"][1]),
        (models.Collaborator, world["permission"][1]["user"]),
        (models.CheckRun, world["check_runs"][1]["check_runs"][0]),
        (models.CombinedCommitStatus, world["status"][1]),
        (models.Label, world["labels"][1][0]),
        (models.LabeledIssueEvent, world["events"][1][0]),
        (models.UnlabeledIssueEvent, world["events"][1][-1]),
        (models.TeamMembership, world["team"][1]),
        (models.SimpleUser, world["issue"][1]["user"]),
    ]
    for model, data in objects:
        model.model_validate(data)
        for field in _required(model):
            broken = {key: value for key, value in data.items() if key != field}
            with pytest.raises(ValidationError):
                model.model_validate(broken)


def test_a_pull_request_is_retargeted_as_github_does(r: Rig) -> None:
    # PATCH /pulls/{n} with `base` (GitHub's "Update a pull request"): the base of an open
    # pull request moves to a branch of the repository; a branch that is not there, or a
    # closed pull request, is refused with GitHub's 422.
    r.branch("lower", {"a.py": "x = 1\n"})
    r.branch("upper", {"b.py": "y = 1\n"})
    status, pull = _call(
        r, "POST", "/pulls", {"title": "U", "body": "", "head": "upper", "base": "lower"}
    )
    assert status == 201 and pull["base"]["ref"] == "lower"
    number = pull["number"]
    status, moved = _call(r, "PATCH", f"/pulls/{number}", {"base": "main"})
    assert status == 200 and moved["base"]["ref"] == "main"
    assert _call(r, "GET", f"/pulls/{number}")[1]["base"]["ref"] == "main"
    status, refused = _call(r, "PATCH", f"/pulls/{number}", {"base": "gone"})
    assert status == 422 and refused["errors"][0]["field"] == "base"
    _call(r, "PATCH", f"/pulls/{number}", {"state": "closed"})
    status, refused = _call(r, "PATCH", f"/pulls/{number}", {"base": "lower"})
    assert status == 422 and "closed pull request" in refused["message"]


def test_a_pull_requests_body_and_reviewers_as_github_updates_them(r: Rig) -> None:
    # PATCH /pulls/{n} with `body` replaces the description; POST .../requested_reviewers asks
    # people to review (a login without access is refused, 422); a review answers the ask.
    r.branch("feature", {"a.py": "x = 1\n"})
    status, pull = _call(
        r, "POST", "/pulls", {"title": "T", "body": "first", "head": "feature", "base": "main"}
    )
    number = pull["number"]
    status, edited = _call(r, "PATCH", f"/pulls/{number}", {"body": "second"})
    assert status == 200 and edited["body"] == "second" and edited["title"] == "T"
    status, asked = _call(
        r, "POST", f"/pulls/{number}/requested_reviewers", {"reviewers": ["alice", "bob"]}
    )
    assert status == 201
    assert [u["login"] for u in asked["requested_reviewers"]] == ["alice", "bob"]
    status, refused = _call(
        r, "POST", f"/pulls/{number}/requested_reviewers", {"reviewers": ["mallory"]}
    )
    assert status == 422 and "collaborators" in refused["message"]
    r.gh.add_review(number, "alice", "APPROVED")
    now = _call(r, "GET", f"/pulls/{number}")[1]
    assert [u["login"] for u in now["requested_reviewers"]] == ["bob"]


def test_a_deleted_base_branch_retargets_or_closes_as_github_does(r: Rig) -> None:
    # GitHub: deleting the head branch of a merged pull request retargets the open pull
    # requests based on it to that pull request's base; deleting a branch nothing merged
    # from closes the pull requests based on it.
    r.branch("lower", {"a.py": "x = 1\n"})
    upper_sha = r.gh.git.commit_files(
        "upper", {"b.py": "y = 1\n"}, "upper", parent=r.gh.git.tip("lower"), force=True
    )
    assert upper_sha
    r.branch("other", {"c.py": "z = 1\n"})
    r.gh.git.commit_files(
        "on-other", {"d.py": "w = 1\n"}, "on other", parent=r.gh.git.tip("other"), force=True
    )
    lower = _call(r, "POST", "/pulls", {"title": "L", "head": "lower", "base": "main"})[1]
    upper = _call(r, "POST", "/pulls", {"title": "U", "head": "upper", "base": "lower"})[1]
    stray = _call(r, "POST", "/pulls", {"title": "S", "head": "on-other", "base": "other"})[1]
    r.gh.human_merge(lower["number"])
    r.gh.delete_branch("lower")
    now = _call(r, "GET", f"/pulls/{upper['number']}")[1]
    assert now["state"] == "open" and now["base"]["ref"] == "main"
    r.gh.delete_branch("other")
    assert _call(r, "GET", f"/pulls/{stray['number']}")[1]["state"] == "closed"
    assert r.gh.git.tip("lower") is None and r.gh.git.tip("other") is None


def test_the_forge_client_retargets_edits_and_asks_for_reviews(r: Rig) -> None:
    r.branch("lower", {"a.py": "x = 1\n"})
    r.gh.git.commit_files(
        "upper", {"b.py": "y = 1\n"}, "upper", parent=r.gh.git.tip("lower"), force=True
    )
    number = _call(r, "POST", "/pulls", {"title": "U", "head": "upper", "base": "lower"})[1][
        "number"
    ]

    async def go() -> None:
        moved = await r.forge.update_pull(number, base="main", body=own("Stack: #1 below"))
        assert moved.base == "main" and "Stack:" in moved.body
        await r.forge.request_reviews(number, ["alice"])
        await r.forge.request_reviews(number, [])  # nobody: no request at all

    before = len(r.gh.requests)
    anyio.run(go)
    sent = [(q.method, q.path.rsplit("/", 1)[-1]) for q in r.gh.requests[before:]]
    assert sent == [("PATCH", str(number)), ("POST", "requested_reviewers")]
    assert [u["login"] for u in r.gh.site.pull_json(number)["requested_reviewers"]] == ["alice"]
