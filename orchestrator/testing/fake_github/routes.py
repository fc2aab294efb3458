"""The fake GitHub's endpoints: a request (method, path, headers, JSON body) -> an ``Answer``.

Authentication first (401 ``Bad credentials``; a scopeless token's writes get 403 ``Resource
not accessible by integration``), then a queued fault if there is one, then the endpoint.
Lists are paged by ``per_page`` and ``page`` as on GitHub.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

from orchestrator.testing.fake_github import objects
from orchestrator.testing.fake_github.records import CommentRecord, IssueRecord
from orchestrator.testing.fake_github.shapes import error, label, stamp
from orchestrator.testing.fake_github.site import API_PREFIX, Answer, GitHubSite

__all__ = ["handle"]

Query = dict[str, str]
Route = Callable[[GitHubSite, re.Match[str], Query, Any, str], Answer]


def handle(
    site: GitHubSite, method: str, target: str, headers: dict[str, str], payload: Any
) -> Answer:
    parts = urlsplit(target)
    query = {name: values[-1] for name, values in parse_qs(parts.query).items()}
    token = _token(headers.get("authorization", ""))
    if token != site.token and token not in site.scopeless_tokens:
        return Answer(401, error("Bad credentials", 401))
    if method != "GET" and token in site.scopeless_tokens:
        return Answer(403, error("Resource not accessible by integration", 403))
    fault = site.next_fault()
    if fault is not None:
        return fault
    prefix = f"{API_PREFIX}/repos/{site.owner}/{site.repo}"
    routes = _ROUTES
    if parts.path.startswith(prefix + "/"):
        rest = parts.path[len(prefix) :]
    elif parts.path.startswith(API_PREFIX + "/orgs/"):
        rest, routes = parts.path[len(API_PREFIX) :], _ORG_ROUTES
    else:
        return Answer(404, error("Not Found", 404))
    if payload is None:
        return Answer(400, error("Problems parsing JSON", 400))
    for verb, pattern, route in routes:
        match = pattern.fullmatch(rest)
        if match and verb == method:
            with site.lock:
                return route(site, match, query, payload, token)
    return Answer(404, error("Not Found", 404))


def _token(value: str) -> str:
    scheme, _, credential = value.partition(" ")
    return credential.strip() if scheme.lower() in ("token", "bearer") else ""


def _page(items: list[Any], query: Query) -> list[Any]:
    size = max(1, min(100, int(query.get("per_page", "30"))))
    page = max(1, int(query.get("page", "1")))
    return items[(page - 1) * size : page * size]


def _not_found() -> Answer:
    return Answer(404, error("Not Found", 404))


def _invalid(field: str, code: str = "missing_field") -> Answer:
    detail = [{"resource": "Issue", "field": field, "code": code}]
    return Answer(422, error("Validation Failed", 422, detail))


# -- issues ---------------------------------------------------------------------------------------


def list_issues(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    state = query.get("state", "open")
    wanted = [name for name in query.get("labels", "").split(",") if name]
    found = [
        record
        for record in sorted(site.issues.values(), key=lambda r: -r.number)
        if (state == "all" or record.state == state)
        and all(name in record.labels for name in wanted)
    ]
    return Answer(
        200,
        [_issue(site, r) for r in _page(found, query)],
    )


def get_issue(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    record = site.issues.get(int(match["n"]))
    if record is None:
        return _not_found()
    return Answer(200, _issue(site, record))


def edit_issue(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    number = int(match["n"])
    record = site.issues.get(number)
    if record is None or (match["kind"] == "pulls" and record.pull is None):
        return _not_found()
    state = body.get("state")
    if state not in (None, "open", "closed"):
        return _invalid("state", "invalid")
    if "base" in body and match["kind"] == "pulls":
        refused = _retarget(site, record, body["base"])
        if refused is not None:
            return refused
    if state == "closed":
        site.close(number)
    elif state == "open" and not (record.pull and record.pull.merged):
        record.state, record.closed = "open", None
    if "title" in body:
        record.title = str(body["title"])
    if "body" in body:
        record.body = str(body["body"] or "")
    if record.pull is not None and match["kind"] == "pulls":
        return Answer(200, site.pull_json(number))
    return Answer(200, _issue(site, record))


def _retarget(site: GitHubSite, record: IssueRecord, base: Any) -> Answer | None:
    """``PATCH /pulls/{n}`` with ``base``: the pull request now asks to land on ``base``, a
    branch of this repository, while it is open (GitHub's "Update a pull request"); else the
    422 GitHub gives."""
    assert record.pull is not None
    if not isinstance(base, str) or site.git.tip(base) is None:
        return Answer(422, error("Validation Failed", 422, _base_invalid()))
    if record.state != "open":
        return Answer(422, error("Cannot change the base branch of a closed pull request.", 422))
    record.pull.base = base
    return None


def request_reviewers(
    site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str
) -> Answer:
    """``POST /pulls/{n}/requested_reviewers``: each login asked to review (again); 201 with
    the pull request. GitHub refuses a login that cannot review (422)."""
    number = int(match["n"])
    record = site.issues.get(number)
    if record is None or record.pull is None:
        return _not_found()
    logins = body.get("reviewers") if isinstance(body, dict) else None
    if not isinstance(logins, list) or not all(isinstance(x, str) for x in logins):
        return _invalid("reviewers", "invalid")
    for login in logins:
        if site.association(login) not in ("OWNER", "MEMBER", "COLLABORATOR"):
            message = "Reviews may only be requested from collaborators."
            return Answer(422, error(message, 422))
    with site.lock:
        record.requested.update(dict.fromkeys(logins))
    return Answer(201, site.pull_json(number))


def _base_invalid() -> list[dict[str, str]]:
    return [{"resource": "PullRequest", "field": "base", "code": "invalid"}]


def add_comment(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    number = int(match["n"])
    if number not in site.issues:
        return _not_found()
    if not isinstance(body.get("body"), str):
        return _invalid("body")
    comment = site.add_comment(number, body["body"], site.owner)
    return Answer(201, objects.issue_comment(site.urls, number, comment, _said_by(site, comment)))


def _issue(site: GitHubSite, record: IssueRecord) -> dict[str, Any]:
    return objects.issue(site.urls, record, site.colors, site.association(record.author))


def _said_by(site: GitHubSite, comment: CommentRecord) -> str:
    """The comment's ``author_association``: the one it was made with, else its author's."""
    return comment.association or site.association(comment.author)


def list_comments(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    number = int(match["n"])
    record = site.issues.get(number)
    if record is None:
        return _not_found()
    found = _page(record.comments, query)
    shown = [objects.issue_comment(site.urls, number, c, _said_by(site, c)) for c in found]
    return Answer(200, shown)


def repo_comments(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    """Every issue's and pull request's comments: ``since`` (updated at or after), sorted by
    creation (``direction`` asc or desc)."""
    since = query.get("since")
    found = [
        (number, comment)
        for number, comment in site.comments()
        if since is None or stamp(comment.created) >= since
    ]
    if query.get("direction") == "desc":
        found.reverse()
    shown = [
        objects.issue_comment(site.urls, number, comment, _said_by(site, comment))
        for number, comment in _page(found, query)
    ]
    return Answer(200, shown)


def add_reaction(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    comment_id = int(match["id"])
    if not any(comment.id == comment_id for _n, comment in site.comments()):
        return _not_found()
    content = body.get("content")
    if content not in _REACTIONS:
        return _invalid("content", "invalid")
    made, new = site.react(comment_id, site.owner, str(content))
    return Answer(201 if new else 200, objects.reaction(site.urls, made))


_REACTIONS = ("+1", "-1", "laugh", "confused", "heart", "hooray", "rocket", "eyes")


def add_labels(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    record = site.issues.get(int(match["n"]))
    if record is None:
        return _not_found()
    names = body.get("labels")
    if not isinstance(names, list) or not all(isinstance(name, str) for name in names):
        return _invalid("labels", "invalid")
    for name in names:  # put on by the token's user: the site's owner
        site.label(record.number, name, by=site.owner)
    return Answer(200, _labels(site, record.labels))


def remove_label(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    record = site.issues.get(int(match["n"]))
    if record is None:
        return _not_found()
    name = unquote(match["name"])
    if not site.unlabel(record.number, name, by=site.owner):
        return Answer(404, error("Label does not exist", 404))
    return Answer(200, _labels(site, record.labels))


def issue_events(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    record = site.issues.get(int(match["n"]))
    if record is None:
        return _not_found()
    shown = [
        objects.label_event(site.urls, event, site.colors.get(event.label, "ededed"))
        for event in _page(record.events, query)
    ]
    return Answer(200, shown)


def _labels(site: GitHubSite, names: list[str]) -> list[dict[str, Any]]:
    return [label(site.urls, name, site.colors.get(name, "ededed"), None) for name in names]


# -- pull requests --------------------------------------------------------------------------------


def list_pulls(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    state = query.get("state", "open")
    head = query.get("head")
    found = []
    for record in sorted(site.issues.values(), key=lambda r: -r.number):
        if record.pull is None or (state != "all" and record.state != state):
            continue
        if head is not None and head != f"{site.owner}:{record.pull.head}":
            continue
        found.append(record.number)
    pulls = [_simple(site.pull_json(number)) for number in _page(found, query)]
    return Answer(200, pulls)


def _simple(full: dict[str, Any]) -> dict[str, Any]:
    """A pull request as lists show it: without the merge state and the counts."""
    dropped = {"merged", "mergeable", "rebaseable", "mergeable_state", "merged_by", "comments"}
    dropped |= {"review_comments", "maintainer_can_modify", "commits", "additions", "deletions"}
    dropped |= {"changed_files"}
    return {key: value for key, value in full.items() if key not in dropped}


def create_pull(site: GitHubSite, match: re.Match[str], query: Query, body: Any, t: str) -> Answer:
    for field in ("title", "head", "base"):
        if not isinstance(body.get(field), str) or not body[field]:
            return _invalid(field)
    head, base = str(body["head"]).split(":")[-1], str(body["base"])
    for record in site.issues.values():
        if record.pull and record.state == "open" and record.pull.head == head:
            message = f"A pull request already exists for {site.owner}:{head}."
            detail = [{"resource": "PullRequest", "code": "custom", "message": message}]
            return Answer(422, error("Validation Failed", 422, detail))
    if site.git.tip(head) is None or site.git.tip(base) is None:
        missing = "head" if site.git.tip(head) is None else "base"
        detail = [{"resource": "PullRequest", "field": missing, "code": "invalid"}]
        return Answer(422, error("Validation Failed", 422, detail))
    number = site.open_pull(head, base, str(body["title"]), str(body.get("body") or ""), site.owner)
    return Answer(201, site.pull_json(number))


def get_pull(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    number = int(match["n"])
    record = site.issues.get(number)
    if record is None or record.pull is None:
        return _not_found()
    return Answer(200, site.pull_json(number))


def list_reviews(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    number = int(match["n"])
    if number not in site.issues or site.issues[number].pull is None:
        return _not_found()
    found = _page(site.reviews.get(number, []), query)
    answer = Answer(200, [objects.review(site.urls, number, review) for review in found])
    site.reviews_read(number)
    return answer


def list_review_comments(
    site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str
) -> Answer:
    number = int(match["n"])
    if number not in site.issues or site.issues[number].pull is None:
        return _not_found()
    found = _page(site.review_comments.get(number, []), query)
    return Answer(200, [objects.review_comment(site.urls, number, c) for c in found])


def merge_pull(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    method = body.get("merge_method", "merge")
    if method not in ("merge", "squash", "rebase"):
        return _invalid("merge_method", "invalid")
    sha = body.get("sha")
    return site.merge(int(match["n"]), method, sha if isinstance(sha, str) else None, by=site.owner)


def team_membership(site: GitHubSite, match: re.Match[str], query: Query, b: Any, _: str) -> Answer:
    org, team, login = (unquote(match[name]) for name in ("org", "team", "login"))
    if not site.in_team(org, team, login):
        return Answer(404, error("Not Found", 404))
    return Answer(200, objects.team_membership(site.urls, org, team, login))


def collaborator_permission(
    site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str
) -> Answer:
    login = unquote(match["login"])
    if not re.fullmatch(r"[A-Za-z0-9-]+(?:\[bot\])?", login):
        return Answer(404, error(f"{login} is not a user", 404))
    return Answer(200, objects.collaborator_permission(site.urls, login, site.role(login)))


# -- checks ---------------------------------------------------------------------------------------


def check_runs(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    sha = _commit(site, match["ref"])
    if sha is None:
        return Answer(422, error(f"No commit found for SHA: {match['ref']}", 422))
    runs = site.check_runs.get(sha, [])
    shown = [objects.check_run(site.urls, sha, run) for run in _page(runs, query)]
    return Answer(200, {"total_count": len(runs), "check_runs": shown})


def status(site: GitHubSite, match: re.Match[str], query: Query, body: Any, _: str) -> Answer:
    sha = _commit(site, match["ref"])
    if sha is None:
        return Answer(422, error(f"No commit found for SHA: {match['ref']}", 422))
    records = site.statuses.get(sha, [])
    return Answer(200, objects.combined_status(site.urls, sha, records, site.default_branch))


def _commit(site: GitHubSite, ref: str) -> str | None:
    ref = unquote(ref)
    if re.fullmatch(r"[0-9a-f]{40}", ref):
        return ref
    return site.git.tip(ref)


_N = r"(?P<n>[0-9]+)"
_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    ("GET", re.compile(r"/issues"), list_issues),
    ("GET", re.compile(r"/issues/comments"), repo_comments),
    ("POST", re.compile(r"/issues/comments/(?P<id>[0-9]+)/reactions"), add_reaction),
    ("GET", re.compile(rf"/issues/{_N}"), get_issue),
    ("PATCH", re.compile(rf"/(?P<kind>issues|pulls)/{_N}"), edit_issue),
    ("POST", re.compile(rf"/issues/{_N}/comments"), add_comment),
    ("GET", re.compile(rf"/issues/{_N}/comments"), list_comments),
    ("POST", re.compile(rf"/issues/{_N}/labels"), add_labels),
    ("GET", re.compile(rf"/issues/{_N}/events"), issue_events),
    ("DELETE", re.compile(rf"/issues/{_N}/labels/(?P<name>[^/]+)"), remove_label),
    ("GET", re.compile(r"/pulls"), list_pulls),
    ("POST", re.compile(r"/pulls"), create_pull),
    ("GET", re.compile(rf"/pulls/{_N}"), get_pull),
    ("GET", re.compile(rf"/pulls/{_N}/reviews"), list_reviews),
    ("GET", re.compile(rf"/pulls/{_N}/comments"), list_review_comments),
    ("PUT", re.compile(rf"/pulls/{_N}/merge"), merge_pull),
    ("POST", re.compile(rf"/pulls/{_N}/requested_reviewers"), request_reviewers),
    ("GET", re.compile(r"/collaborators/(?P<login>[^/]+)/permission"), collaborator_permission),
    ("GET", re.compile(r"/commits/(?P<ref>[^/]+)/check-runs"), check_runs),
    ("GET", re.compile(r"/commits/(?P<ref>[^/]+)/status"), status),
]
_ORG_ROUTES: list[tuple[str, re.Pattern[str], Route]] = [
    (
        "GET",
        re.compile(r"/orgs/(?P<org>[^/]+)/teams/(?P<team>[^/]+)/memberships/(?P<login>[^/]+)"),
        team_membership,
    ),
]
