"""GitHub's REST objects in their full shape: every field GitHub's published schema requires
(ids, node ids, URLs, user objects, timestamps), so the models a real client parses them with
(githubkit's) accept them. ``Urls`` knows where the fake serves; the builders are pure."""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass
from typing import Any

__all__ = ["Urls", "error", "node_id", "number_id", "stamp", "user"]

_EPOCH_DAY = "2026-01-01"


def number_id(*parts: object) -> int:
    """A stable positive id for what ``parts`` name."""
    digest = hashlib.sha256("/".join(str(part) for part in parts).encode()).digest()
    return int.from_bytes(digest[:6], "big")


def node_id(kind: str, ident: int) -> str:
    return base64.b64encode(f"{kind}:{ident}".encode()).decode().rstrip("=")


def stamp(tick: int) -> str:
    """A timestamp ``tick`` seconds into the fake's day (ISO 8601, UTC, as GitHub writes)."""
    hours, rest = divmod(tick, 3600)
    minutes, seconds = divmod(rest, 60)
    return f"{_EPOCH_DAY}T{hours % 24:02d}:{minutes:02d}:{seconds:02d}Z"


def error(message: str, status: int, errors: list[dict[str, str]] | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {
        "message": message,
        "documentation_url": "https://docs.github.com/rest",
        "status": str(status),
    }
    if errors:
        body["errors"] = errors
    return body


@dataclass(frozen=True)
class Urls:
    """Where the fake answers: ``web`` its HTML root, ``api`` its REST root."""

    web: str
    api: str
    owner: str
    repo: str

    @property
    def repo_api(self) -> str:
        return f"{self.api}/repos/{self.owner}/{self.repo}"

    @property
    def repo_web(self) -> str:
        return f"{self.web}/{self.owner}/{self.repo}"


def user(urls: Urls, login: str) -> dict[str, Any]:
    ident = number_id("user", login)
    api = f"{urls.api}/users/{login}"
    return {
        "login": login,
        "id": ident,
        "node_id": node_id("User", ident),
        "avatar_url": f"{urls.web}/avatars/{login}",
        "gravatar_id": "",
        "url": api,
        "html_url": f"{urls.web}/{login}",
        "followers_url": f"{api}/followers",
        "following_url": f"{api}/following{{/other_user}}",
        "gists_url": f"{api}/gists{{/gist_id}}",
        "starred_url": f"{api}/starred{{/owner}}{{/repo}}",
        "subscriptions_url": f"{api}/subscriptions",
        "organizations_url": f"{api}/orgs",
        "repos_url": f"{api}/repos",
        "events_url": f"{api}/events{{/privacy}}",
        "received_events_url": f"{api}/received_events",
        "type": "Bot" if login.endswith("[bot]") else "User",
        "site_admin": False,
        "user_view_type": "public",
    }


def repository(urls: Urls, default_branch: str, minimal: bool = False) -> dict[str, Any]:
    api = urls.repo_api
    ident = number_id("repo", urls.owner, urls.repo)
    links = {
        name: f"{api}/{path}"
        for name, path in {
            "archive_url": "{archive_format}{/ref}",
            "assignees_url": "assignees{/user}",
            "blobs_url": "git/blobs{/sha}",
            "branches_url": "branches{/branch}",
            "collaborators_url": "collaborators{/collaborator}",
            "comments_url": "comments{/number}",
            "commits_url": "commits{/sha}",
            "compare_url": "compare/{base}...{head}",
            "contents_url": "contents/{+path}",
            "contributors_url": "contributors",
            "deployments_url": "deployments",
            "downloads_url": "downloads",
            "events_url": "events",
            "forks_url": "forks",
            "git_commits_url": "git/commits{/sha}",
            "git_refs_url": "git/refs{/sha}",
            "git_tags_url": "git/tags{/sha}",
            "issue_comment_url": "issues/comments{/number}",
            "issue_events_url": "issues/events{/number}",
            "issues_url": "issues{/number}",
            "keys_url": "keys{/key_id}",
            "labels_url": "labels{/name}",
            "languages_url": "languages",
            "merges_url": "merges",
            "milestones_url": "milestones{/number}",
            "notifications_url": "notifications{?since,all,participating}",
            "pulls_url": "pulls{/number}",
            "releases_url": "releases{/id}",
            "stargazers_url": "stargazers",
            "statuses_url": "statuses/{sha}",
            "subscribers_url": "subscribers",
            "subscription_url": "subscription",
            "tags_url": "tags",
            "teams_url": "teams",
            "trees_url": "git/trees{/sha}",
            "hooks_url": "hooks",
        }.items()
    }
    shape: dict[str, Any] = {
        "id": ident,
        "node_id": node_id("Repository", ident),
        "name": urls.repo,
        "full_name": f"{urls.owner}/{urls.repo}",
        "owner": user(urls, urls.owner),
        "private": True,
        "html_url": urls.repo_web,
        "description": "a repository served by the fake GitHub",
        "fork": False,
        "url": api,
        **links,
        "license": None,
    }
    if minimal:
        return shape
    host = urls.web.split("://", 1)[1]
    return {
        **shape,
        "forks": 0,
        "git_url": f"git://{host}/{urls.owner}/{urls.repo}.git",
        "ssh_url": f"git@{host}:{urls.owner}/{urls.repo}.git",
        "clone_url": f"{urls.repo_web}.git",
        "svn_url": urls.repo_web,
        "mirror_url": None,
        "homepage": None,
        "language": None,
        "forks_count": 0,
        "stargazers_count": 0,
        "watchers_count": 0,
        "size": 1,
        "default_branch": default_branch,
        "open_issues_count": 0,
        "has_pages": False,
        "disabled": False,
        "archived": False,
        "pushed_at": stamp(0),
        "created_at": stamp(0),
        "updated_at": stamp(0),
        "open_issues": 0,
        "watchers": 0,
        "visibility": "private",
    }


def label(urls: Urls, name: str, color: str, description: str | None) -> dict[str, Any]:
    ident = number_id("label", urls.owner, urls.repo, name)
    return {
        "id": ident,
        "node_id": node_id("Label", ident),
        "url": f"{urls.repo_api}/labels/{name}",
        "name": name,
        "description": description,
        "color": color,
        "default": False,
        "archived_at": None,
        "archived_by": None,
    }


def app(urls: Urls, slug: str) -> dict[str, Any]:
    ident = number_id("app", slug)
    return {
        "id": ident,
        "slug": slug,
        "node_id": node_id("Integration", ident),
        "owner": user(urls, "github"),
        "name": slug,
        "description": None,
        "external_url": f"{urls.web}/apps/{slug}",
        "html_url": f"{urls.web}/apps/{slug}",
        "created_at": stamp(0),
        "updated_at": stamp(0),
        "permissions": {"checks": "write", "metadata": "read"},
        "events": ["check_run", "check_suite"],
    }
