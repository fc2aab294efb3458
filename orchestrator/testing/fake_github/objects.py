"""The fake's records as GitHub's JSON objects (``shapes`` has the common parts)."""

from __future__ import annotations

from typing import Any

from orchestrator.testing.fake_github import shapes
from orchestrator.testing.fake_github.records import (
    CheckRunRecord,
    CommentRecord,
    IssueRecord,
    LabelEvent,
    ReactionRecord,
    ReviewCommentRecord,
    ReviewRecord,
    StatusRecord,
)
from orchestrator.testing.fake_github.shapes import Urls, node_id, number_id, stamp, user

__all__ = [
    "check_run",
    "collaborator_permission",
    "combined_status",
    "issue",
    "issue_comment",
    "label_event",
    "pull",
    "reaction",
    "review",
    "review_comment",
    "team_membership",
]


def _when(tick: int | None) -> str | None:
    return None if tick is None else stamp(tick)


def issue(
    urls: Urls, record: IssueRecord, colors: dict[str, str], association: str
) -> dict[str, Any]:
    api = f"{urls.repo_api}/issues/{record.number}"
    web_kind = "pull" if record.pull else "issues"
    html = f"{urls.repo_web}/{web_kind}/{record.number}"
    ident = number_id("issue", urls.owner, urls.repo, record.number)
    shape: dict[str, Any] = {
        "id": ident,
        "node_id": node_id("PullRequest" if record.pull else "Issue", ident),
        "url": api,
        "repository_url": urls.repo_api,
        "labels_url": f"{api}/labels{{/name}}",
        "comments_url": f"{api}/comments",
        "events_url": f"{api}/events",
        "html_url": html,
        "number": record.number,
        "state": record.state,
        "state_reason": "completed" if record.state == "closed" and not record.pull else None,
        "title": record.title,
        "body": record.body,
        "user": user(urls, record.author),
        "labels": [_label(urls, name, colors) for name in record.labels],
        "assignee": None,
        "assignees": [],
        "milestone": None,
        "locked": False,
        "active_lock_reason": None,
        "comments": len(record.comments),
        "closed_at": _when(record.closed),
        "created_at": stamp(record.created),
        "updated_at": stamp(record.updated),
        "author_association": association,
    }
    if record.pull is not None:
        shape["pull_request"] = {
            "url": f"{urls.repo_api}/pulls/{record.number}",
            "html_url": html,
            "diff_url": f"{html}.diff",
            "patch_url": f"{html}.patch",
            "merged_at": _when(record.pull.merged_at),
        }
    return shape


def _label(urls: Urls, name: str, colors: dict[str, str]) -> dict[str, Any]:
    return shapes.label(urls, name, colors.get(name, "ededed"), None)


def issue_comment(
    urls: Urls, number: int, comment: CommentRecord, association: str
) -> dict[str, Any]:
    return {
        "id": comment.id,
        "node_id": node_id("IssueComment", comment.id),
        "url": f"{urls.repo_api}/issues/comments/{comment.id}",
        "html_url": f"{urls.repo_web}/issues/{number}#issuecomment-{comment.id}",
        "body": comment.body,
        "user": user(urls, comment.author),
        "created_at": stamp(comment.created),
        "updated_at": stamp(comment.created),
        "issue_url": f"{urls.repo_api}/issues/{number}",
        "author_association": association,
    }


def reaction(urls: Urls, record: ReactionRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "node_id": node_id("Reaction", record.id),
        "user": user(urls, record.author),
        "content": record.content,
        "created_at": stamp(record.created),
    }


def pull(
    urls: Urls,
    record: IssueRecord,
    colors: dict[str, str],
    *,
    base_sha: str,
    mergeable: bool | None,
    mergeable_state: str,
    review_comments: int,
    default_branch: str,
) -> dict[str, Any]:
    assert record.pull is not None
    part = record.pull
    api = f"{urls.repo_api}/pulls/{record.number}"
    issue_api = f"{urls.repo_api}/issues/{record.number}"
    html = f"{urls.repo_web}/pull/{record.number}"
    ident = number_id("pull", urls.owner, urls.repo, record.number)
    repo = shapes.repository(urls, default_branch)

    def end(ref: str, sha: str) -> dict[str, Any]:
        return {
            "label": f"{urls.owner}:{ref}",
            "ref": ref,
            "sha": sha,
            "user": user(urls, urls.owner),
            "repo": repo,
        }

    return {
        "url": api,
        "id": ident,
        "node_id": node_id("PullRequest", ident),
        "html_url": html,
        "diff_url": f"{html}.diff",
        "patch_url": f"{html}.patch",
        "issue_url": issue_api,
        "commits_url": f"{api}/commits",
        "review_comments_url": f"{api}/comments",
        "review_comment_url": f"{urls.repo_api}/pulls/comments{{/number}}",
        "comments_url": f"{issue_api}/comments",
        "statuses_url": f"{urls.repo_api}/statuses/{part.head_sha}",
        "number": record.number,
        "state": record.state,
        "locked": False,
        "title": record.title,
        "user": user(urls, record.author),
        "body": record.body,
        "labels": [_label(urls, name, colors) for name in record.labels],
        "milestone": None,
        "active_lock_reason": None,
        "created_at": stamp(record.created),
        "updated_at": stamp(record.updated),
        "closed_at": _when(record.closed),
        "merged_at": _when(part.merged_at),
        "merge_commit_sha": part.merge_commit_sha,
        "assignee": None,
        "assignees": [],
        "requested_reviewers": [user(urls, login) for login in record.requested],
        "requested_teams": [],
        "head": end(part.head, part.head_sha),
        "base": end(part.base, base_sha),
        "_links": {
            name: {"href": href}
            for name, href in {
                "self": api,
                "html": html,
                "issue": issue_api,
                "comments": f"{issue_api}/comments",
                "review_comments": f"{api}/comments",
                "review_comment": f"{urls.repo_api}/pulls/comments{{/number}}",
                "commits": f"{api}/commits",
                "statuses": f"{urls.repo_api}/statuses/{part.head_sha}",
            }.items()
        },
        "author_association": "MEMBER",
        "auto_merge": None,
        "draft": False,
        "merged": part.merged,
        "mergeable": mergeable,
        "rebaseable": mergeable,
        "mergeable_state": mergeable_state,
        "merged_by": user(urls, part.merged_by) if part.merged_by else None,
        "comments": len(record.comments),
        "review_comments": review_comments,
        "maintainer_can_modify": False,
        "commits": 1,
        "additions": 0,
        "deletions": 0,
        "changed_files": 0,
    }


def review(urls: Urls, number: int, record: ReviewRecord) -> dict[str, Any]:
    html = f"{urls.repo_web}/pull/{number}#pullrequestreview-{record.id}"
    api = f"{urls.repo_api}/pulls/{number}"
    return {
        "id": record.id,
        "node_id": node_id("PullRequestReview", record.id),
        "user": user(urls, record.reviewer),
        "body": record.body,
        "state": record.state,
        "html_url": html,
        "pull_request_url": api,
        "_links": {"html": {"href": html}, "pull_request": {"href": api}},
        "submitted_at": stamp(record.submitted),
        "commit_id": record.commit_id,
        "author_association": record.association,
    }


def review_comment(urls: Urls, number: int, record: ReviewCommentRecord) -> dict[str, Any]:
    api = f"{urls.repo_api}/pulls/comments/{record.id}"
    html = f"{urls.repo_web}/pull/{number}#discussion_r{record.id}"
    pull_api = f"{urls.repo_api}/pulls/{number}"
    return {
        "url": api,
        "pull_request_review_id": record.review_id,
        "id": record.id,
        "node_id": node_id("PullRequestReviewComment", record.id),
        "diff_hunk": f"@@ -{record.line},1 +{record.line},1 @@",
        "path": record.path,
        "position": record.line,
        "original_position": record.line,
        "commit_id": record.commit_id,
        "original_commit_id": record.commit_id,
        "user": user(urls, record.reviewer),
        "body": record.body,
        "created_at": stamp(record.created),
        "updated_at": stamp(record.created),
        "html_url": html,
        "pull_request_url": pull_api,
        "author_association": record.association,
        "_links": {
            "self": {"href": api},
            "html": {"href": html},
            "pull_request": {"href": pull_api},
        },
        "line": record.line,
        "original_line": record.line,
        "side": "RIGHT",
        "subject_type": "line",
    }


def check_run(urls: Urls, sha: str, record: CheckRunRecord) -> dict[str, Any]:
    api = f"{urls.repo_api}/check-runs/{record.id}"
    html = f"{urls.repo_web}/runs/{record.id}"
    return {
        "id": record.id,
        "head_sha": sha,
        "node_id": node_id("CheckRun", record.id),
        "external_id": str(record.id),
        "url": api,
        "html_url": html,
        "details_url": html,
        "status": record.status,
        "conclusion": record.conclusion,
        "started_at": stamp(record.started),
        "completed_at": _when(record.completed),
        "output": {
            "title": record.name,
            "summary": record.summary,
            "text": record.text,
            "annotations_count": 0,
            "annotations_url": f"{api}/annotations",
        },
        "name": record.name,
        "check_suite": {"id": number_id("suite", sha)},
        "app": shapes.app(urls, "fake-ci"),
        "pull_requests": [],
    }


def combined_status(
    urls: Urls, sha: str, records: list[StatusRecord], default_branch: str
) -> dict[str, Any]:
    states = {record.state for record in records}
    if not records or "pending" in states:
        state = "pending"
    elif states <= {"success"}:
        state = "success"
    else:
        state = "failure"
    return {
        "state": state,
        "statuses": [_status(urls, record) for record in records],
        "sha": sha,
        "total_count": len(records),
        "repository": shapes.repository(urls, default_branch, minimal=True),
        "commit_url": f"{urls.repo_api}/commits/{sha}",
        "url": f"{urls.repo_api}/commits/{sha}/status",
    }


def _status(urls: Urls, record: StatusRecord) -> dict[str, Any]:
    return {
        "id": record.id,
        "node_id": node_id("StatusContext", record.id),
        "state": record.state,
        "description": record.description,
        "context": record.context,
        "target_url": f"{urls.web}/ci/{record.id}",
        "avatar_url": None,
        "url": f"{urls.repo_api}/statuses/{record.id}",
        "created_at": stamp(record.created),
        "updated_at": stamp(record.created),
    }


_LEGACY = {"maintain": "write", "triage": "read"}


def label_event(urls: Urls, event: LabelEvent, color: str) -> dict[str, Any]:
    """An issue's ``labeled`` / ``unlabeled`` event (``GET issues/{n}/events``)."""
    return {
        "id": event.id,
        "node_id": node_id("LabeledEvent", event.id),
        "url": f"{urls.repo_api}/issues/events/{event.id}",
        "actor": user(urls, event.actor),
        "event": event.event,
        "commit_id": None,
        "commit_url": None,
        "created_at": stamp(event.at),
        "label": {"name": event.label, "color": color},
        "performed_via_github_app": None,
    }


def team_membership(urls: Urls, org: str, team: str, login: str) -> dict[str, Any]:
    """``GET /orgs/{org}/teams/{team}/memberships/{login}`` of an active member."""
    return {
        "url": f"{urls.api}/organizations/{number_id(org)}/team/{number_id(org, team)}"
        f"/memberships/{login}",
        "role": "member",
        "state": "active",
    }


def collaborator_permission(urls: Urls, login: str, role: str) -> dict[str, Any]:
    """``GET collaborators/{login}/permission``: ``permission`` in the legacy words (maintain
    said as write, triage as read), ``role_name`` the role itself."""
    legacy = _LEGACY.get(role, role)
    flags = {
        "pull": role != "none",
        "triage": role in ("triage", "write", "maintain", "admin"),
        "push": role in ("write", "maintain", "admin"),
        "maintain": role in ("maintain", "admin"),
        "admin": role == "admin",
    }
    return {
        "permission": legacy,
        "role_name": role,
        "user": {**user(urls, login), "permissions": flags, "role_name": role},
    }
