"""The forge on GitHub's REST API, through githubkit (the only module that imports it).

githubkit gives every REST object as a pydantic model of GitHub's published schema; each
answer is parsed into one and translated into ``orchestrator.forge.base``'s values here, so
nothing else sees githubkit. Its own HTTP cache and automatic retries are off: this module
only puts each request on the wire; ``forge.github_calls`` keeps an ETag per URL
(``If-None-Match``; a 304 gives the remembered body back and is counted apart), waits out rate
limits and server errors, bounded (``pacing.Pacing``), reads listings page by page and parses
each answer into the model asked for.

The token goes to githubkit's auth and nowhere else: an error carries the method, the path and
GitHub's own message; ``repr`` shows the repository and the API URL.
"""

from __future__ import annotations

import functools
import ssl
from collections.abc import Mapping, Sequence
from typing import Any, Literal, cast
from urllib.parse import quote

import httpx
from githubkit import GitHub, Response
from githubkit.exception import RequestError, RequestFailed
from githubkit.utils import UNSET
from githubkit_schemas.latest import models

from orchestrator.errors import ForgeError, ForgeNotFound, ForgeRefused
from orchestrator.forge.base import (
    ASSOCIATIONS,
    Association,
    CheckResult,
    Checks,
    Comment,
    Issue,
    IssueFilter,
    MergeMethod,
    MergeOutcome,
    OpenedPull,
    PullRequest,
    RequestCount,
    Review,
    ReviewComment,
)
from orchestrator.forge.github_calls import PAGE, Failure, GitHubCalls, message
from orchestrator.forge.pacing import Pacing
from orchestrator.forge.public_text import PublicText
from orchestrator.safety import secret_mask

__all__ = ["GitHubForge"]

_TEXT_TAIL_LINES = 30
_TEXT_TAIL_CHARS = 4000
_ALREADY_EXISTS = "a pull request already exists"
_ROLES = ("admin", "maintain", "write", "triage", "read", "none")


@functools.cache
def _tls_context() -> ssl.SSLContext:
    """The TLS context of every request, made once a process: githubkit makes an HTTP client
    for each request, and each made its own, loading the CA bundle again (44 ms of CPU, most
    of what an idle ``council serve`` spent on a poll). Built as httpx builds its default
    (the ``SSL_CERT_FILE``/``SSL_CERT_DIR`` environment honoured)."""
    return httpx.create_ssl_context(trust_env=True)


class GitHubForge:
    """One repository (``owner/name``) on GitHub or GitHub Enterprise Server (``api_url``)."""

    def __init__(
        self,
        repo: str,
        token: str,
        *,
        api_url: str = "https://api.github.com",
        pacing: Pacing | None = None,
        timeout: float = 30.0,
    ) -> None:
        owner, _, name = repo.partition("/")
        if not owner or not name or "/" in name:
            raise ValueError(f"forge repository {repo!r} is not OWNER/NAME")
        secret_mask.remember_named({"forge.token": token})
        self._repo = repo
        self._api_url = api_url.rstrip("/")
        self._prefix = f"/repos/{quote(owner, safe='')}/{quote(name, safe='')}"
        self._client = GitHub(
            token,
            base_url=self._api_url + "/",
            http_cache=False,
            auto_retry=False,
            timeout=timeout,
            user_agent="cli-council",
            ssl_verify=_tls_context(),
        )
        self._pacing = pacing or Pacing()
        self._calls = GitHubCalls(self._prefix, self._send, self._pacing)

    def __repr__(self) -> str:
        return f"GitHubForge(repo={self._repo!r}, api_url={self._api_url!r})"

    @property
    def repo(self) -> str:
        return self._repo

    def requests(self) -> RequestCount:
        return self._calls.requests()

    # -- issues --------------------------------------------------------------------------------

    async def list_issues(
        self, *, state: IssueFilter = "open", labels: Sequence[str] = ()
    ) -> list[Issue]:
        params: dict[str, str] = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        found = await self._calls.pages("/issues", models.Issue, params)
        return [_issue(issue) for issue in found if not issue.pull_request]

    async def get_issue(self, number: int) -> Issue:
        return _issue(await self._calls.call("GET", f"/issues/{number}", models.Issue))

    async def comment(self, number: int, body: PublicText) -> Comment:
        made = await self._calls.call(
            "POST", f"/issues/{number}/comments", models.IssueComment, body={"body": body}
        )
        return _comment(made)

    async def list_comments(self, number: int) -> list[Comment]:
        found = await self._calls.pages(f"/issues/{number}/comments", models.IssueComment)
        return [_comment(comment) for comment in found]

    async def list_repo_comments(self, *, since: str | None = None) -> list[Comment]:
        params = {"sort": "created", "direction": "asc"}
        if since is not None:
            params["since"] = since
        found = await self._calls.pages("/issues/comments", models.IssueComment, params)
        return [_comment(comment) for comment in found]

    async def react(self, comment_id: int, content: str) -> None:
        await self._calls.call(
            "POST",
            f"/issues/comments/{comment_id}/reactions",
            models.Reaction,
            body={"content": content},
        )

    async def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        now = await self._calls.call(
            "POST", f"/issues/{number}/labels", list[models.Label], body={"labels": list(labels)}
        )
        return tuple(label.name for label in now)

    async def remove_label(self, number: int, label: str) -> tuple[str, ...] | None:
        try:
            left = await self._calls.call(
                "DELETE", f"/issues/{number}/labels/{quote(label, safe='')}", list[models.Label]
            )
        except ForgeNotFound as exc:
            if "label does not exist" not in exc.message.lower():
                raise
            return None
        return tuple(item.name for item in left)

    async def close(self, number: int) -> None:
        await self._calls.call("PATCH", f"/issues/{number}", models.Issue, body={"state": "closed"})

    # -- pull requests -------------------------------------------------------------------------

    async def find_pull(self, head: str) -> PullRequest | None:
        owner = self._repo.split("/", 1)[0]
        params = {"head": f"{owner}:{head}", "state": "open"}
        found = await self._calls.call(
            "GET", "/pulls", list[models.PullRequestSimple], params=params
        )
        return await self.get_pull(found[0].number) if found else None

    async def open_pull(
        self, *, title: PublicText, body: PublicText, head: str, base: str
    ) -> OpenedPull:
        wanted = {"title": title, "body": body, "head": head, "base": base}
        try:
            made = await self._calls.call("POST", "/pulls", models.PullRequest, body=wanted)
        except ForgeRefused as exc:
            if _ALREADY_EXISTS not in exc.message.lower():
                raise
            existing = await self.find_pull(head)
            if existing is None:
                raise
            return OpenedPull(existing, created=False)
        return OpenedPull(_pull(made), created=True)

    async def get_pull(self, number: int) -> PullRequest:
        return _pull(await self._calls.call("GET", f"/pulls/{number}", models.PullRequest))

    async def update_pull(
        self, number: int, *, base: str | None = None, body: PublicText | None = None
    ) -> PullRequest:
        wanted: dict[str, str] = {}
        if base is not None:
            wanted["base"] = base
        if body is not None:
            wanted["body"] = body
        if not wanted:
            return await self.get_pull(number)
        return _pull(
            await self._calls.call("PATCH", f"/pulls/{number}", models.PullRequest, body=wanted)
        )

    async def request_reviews(self, number: int, reviewers: Sequence[str]) -> None:
        if reviewers:
            body = {"reviewers": list(reviewers)}
            await self._calls.call(
                "POST", f"/pulls/{number}/requested_reviewers", models.PullRequestSimple, body=body
            )

    async def list_reviews(self, number: int) -> list[Review]:
        found = await self._calls.pages(f"/pulls/{number}/reviews", models.PullRequestReview)
        return [_review(review) for review in found]

    async def list_review_comments(self, number: int) -> list[ReviewComment]:
        found = await self._calls.pages(
            f"/pulls/{number}/comments", models.PullRequestReviewComment
        )
        return [_review_comment(comment) for comment in found]

    async def checks(self, sha: str) -> Checks:
        runs: list[CheckResult] = []
        page = 1
        while True:
            answer = await self._calls.call(
                "GET",
                f"/commits/{quote(sha, safe='')}/check-runs",
                models.ReposOwnerRepoCommitsRefCheckRunsGetResponse200,
                params={"per_page": str(PAGE), "page": str(page)},
            )
            runs += [_check_run(run) for run in answer.check_runs]
            if len(answer.check_runs) < PAGE:
                break
            page += 1
        combined = await self._calls.call(
            "GET", f"/commits/{quote(sha, safe='')}/status", models.CombinedCommitStatus
        )
        statuses = [_status(status) for status in combined.statuses]
        return Checks(sha, tuple(runs + statuses))

    async def permission(self, login: str) -> str:
        found = await self._calls.call(
            "GET",
            f"/collaborators/{quote(login, safe='')}/permission",
            models.RepositoryCollaboratorPermission,
        )
        # ``role_name`` is the role itself (maintain, triage), or a custom role's name: then
        # ``permission``, its base role in the legacy words (admin, write, read, none).
        role = str(found.role_name or "").lower()
        return role if role in _ROLES else str(found.permission).lower()

    async def in_team(self, org: str, team: str, login: str) -> bool:
        path = "/".join(
            ("/orgs", quote(org, safe=""), "teams", quote(team, safe=""), "memberships")
        )
        try:
            found = await self._calls.call(
                "GET", f"{path}/{quote(login, safe='')}", models.TeamMembership, root=True
            )
        except ForgeNotFound:
            return False  # not a member (or a team this token cannot see)
        return str(found.state) == "active"

    async def labelled_by(self, number: int) -> Mapping[str, str]:
        found = await self._calls.pages(f"/issues/{number}/events", models.IssueEvent)
        by: dict[str, str] = {}
        for event in found:  # oldest first: the last one to put a label on wins
            label = _given(event.label)
            if label is None or not isinstance(label.name, str):
                continue
            if event.event == "labeled" and event.actor is not None:
                by[label.name] = event.actor.login
            elif event.event == "unlabeled":
                by.pop(label.name, None)
        return by

    async def merge_pull(
        self, number: int, *, method: MergeMethod, expected_sha: str
    ) -> MergeOutcome:
        asked = {"merge_method": method, "sha": expected_sha}
        try:
            done = await self._calls.call(
                "PUT", f"/pulls/{number}/merge", models.PullRequestMergeResult, body=asked
            )
        except ForgeError as exc:
            if exc.status == 405:
                return MergeOutcome("not_mergeable", None, exc.message)
            if exc.status == 409:
                return MergeOutcome("head_changed", None, exc.message)
            raise
        return MergeOutcome("merged", done.sha, done.message)

    # -- one request on the wire (the rest is ``github_calls``) --------------------------------

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        headers: dict[str, str],
    ) -> Response[Any] | Failure:
        try:
            return await self._client.arequest(
                method, url, params=dict(params or {}), json=body, headers=headers
            )
        except RequestFailed as exc:
            raw = exc.response
            lowered = {name.lower(): value for name, value in raw.headers.items()}
            return Failure(raw.status_code, lowered, message(raw.raw_response.content))
        except RequestError as exc:
            return Failure(None, {}, f"no answer ({type(exc.exc).__name__})")


# -- GitHub's objects -> the forge's values -----------------------------------------------------


def _given(value: Any) -> Any:
    """None for githubkit's UNSET (a field the answer left out)."""
    return None if value is UNSET else value


def _login(user: Any) -> str:
    user = _given(user)
    return str(user.login) if user is not None else ""


def _association(value: Any) -> Association:
    """GitHub's ``author_association``; one it does not document is no relation (NONE)."""
    word = str(_given(value) or "").upper()
    return next((known for known in ASSOCIATIONS if known == word), "NONE")


def _issue(issue: models.Issue) -> Issue:
    labels = tuple(
        label if isinstance(label, str) else str(_given(label.name) or "") for label in issue.labels
    )
    state = cast(Literal["open", "closed"], issue.state)
    return Issue(
        number=issue.number,
        title=issue.title,
        body=_given(issue.body) or "",
        state=state,
        labels=tuple(label for label in labels if label),
        author=_login(issue.user),
        url=issue.html_url,
        comments=int(issue.comments),
        association=_association(issue.author_association),
    )


def _comment(comment: models.IssueComment) -> Comment:
    user = _given(comment.user)
    number = comment.issue_url.rstrip("/").rsplit("/", 1)[-1]
    return Comment(
        id=comment.id,
        body=_given(comment.body) or "",
        author=_login(user),
        association=_association(comment.author_association),
        is_bot=user is not None and str(_given(user.type) or "") == "Bot",
        issue=int(number) if number.isdigit() else 0,
        updated_at=comment.updated_at.isoformat().replace("+00:00", "Z"),
    )


def _pull(pull: models.PullRequest) -> PullRequest:
    return PullRequest(
        number=pull.number,
        title=pull.title,
        body=_given(pull.body) or "",
        state=pull.state,
        merged=pull.merged,
        head=pull.head.ref,
        head_sha=pull.head.sha,
        base=pull.base.ref,
        mergeable=pull.mergeable,
        mergeable_state=pull.mergeable_state,
        url=pull.html_url,
    )


def _review(review: models.PullRequestReview) -> Review:
    submitted = _given(review.submitted_at)
    return Review(
        id=review.id,
        reviewer=_login(review.user),
        state=cast(Any, review.state.upper()),
        body=review.body,
        commit_id=review.commit_id or "",
        submitted_at=submitted.isoformat() if submitted is not None else None,
        association=_association(review.author_association),
    )


def _review_comment(comment: models.PullRequestReviewComment) -> ReviewComment:
    return ReviewComment(
        id=comment.id,
        review_id=comment.pull_request_review_id,
        reviewer=_login(comment.user),
        path=comment.path,
        line=_given(comment.line),
        body=comment.body,
        association=_association(comment.author_association),
    )


def _check_run(run: models.CheckRun) -> CheckResult:
    text = _given(run.output.text) or ""
    tail = "\n".join(text.splitlines()[-_TEXT_TAIL_LINES:])[-_TEXT_TAIL_CHARS:]
    return CheckResult(
        name=run.name,
        kind="check_run",
        status=run.status,
        conclusion=_given(run.conclusion),
        summary=_given(run.output.summary) or "",
        text_tail=tail,
        url=_given(run.details_url) or run.html_url,
    )


def _status(status: models.SimpleCommitStatus) -> CheckResult:
    return CheckResult(
        name=status.context,
        kind="status",
        status=status.state,
        conclusion=None,
        summary=status.description or "",
        text_tail="",
        url=status.target_url,
    )
