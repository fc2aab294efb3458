"""The forge on GitHub's REST API, through githubkit (the only module that imports it).

githubkit gives every REST object as a pydantic model of GitHub's published schema; each
answer is parsed into one and translated into ``orchestrator.forge.base``'s values here, so
nothing else sees githubkit. Its own HTTP cache and automatic retries are off: this module
keeps an ETag per URL (``If-None-Match``; a 304 gives the remembered body back and is counted
apart) and waits out rate limits and server errors itself, bounded (``pacing.Pacing``).

The token goes to githubkit's auth and nowhere else: an error carries the method, the path and
GitHub's own message; ``repr`` shows the repository and the API URL.
"""

from __future__ import annotations

import functools
import json
import logging
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, TypeVar, cast
from urllib.parse import quote

import httpx
from githubkit import GitHub, Response
from githubkit.exception import RequestError, RequestFailed
from githubkit.utils import UNSET
from githubkit_schemas.latest import models
from pydantic import TypeAdapter, ValidationError

from orchestrator.errors import (
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    ForgeRefused,
    ForgeUnavailable,
)
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
from orchestrator.forge.pacing import ETagCache, Pacing, RequestCounter
from orchestrator.forge.public_text import PublicText
from orchestrator.safety import secret_mask

__all__ = ["GitHubForge"]

_log = logging.getLogger(__name__)
_PAGE = 100
_TEXT_TAIL_LINES = 30
_TEXT_TAIL_CHARS = 4000
_ALREADY_EXISTS = "a pull request already exists"
_ROLES = ("admin", "maintain", "write", "triage", "read", "none")

M = TypeVar("M")
_adapters: dict[Any, TypeAdapter[Any]] = {}


def _adapter(model: type[M] | Any) -> TypeAdapter[Any]:
    adapter = _adapters.get(model)
    if adapter is None:
        adapter = _adapters[model] = TypeAdapter(model)
    return adapter


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
        self._cache = ETagCache()
        self._counter = RequestCounter()

    def __repr__(self) -> str:
        return f"GitHubForge(repo={self._repo!r}, api_url={self._api_url!r})"

    @property
    def repo(self) -> str:
        return self._repo

    def requests(self) -> RequestCount:
        return self._counter.snapshot()

    # -- issues --------------------------------------------------------------------------------

    async def list_issues(
        self, *, state: IssueFilter = "open", labels: Sequence[str] = ()
    ) -> list[Issue]:
        params: dict[str, str] = {"state": state}
        if labels:
            params["labels"] = ",".join(labels)
        found = await self._pages("/issues", models.Issue, params)
        return [_issue(issue) for issue in found if not issue.pull_request]

    async def get_issue(self, number: int) -> Issue:
        return _issue(await self._call("GET", f"/issues/{number}", models.Issue))

    async def comment(self, number: int, body: PublicText) -> Comment:
        made = await self._call(
            "POST", f"/issues/{number}/comments", models.IssueComment, body={"body": body}
        )
        return _comment(made)

    async def list_comments(self, number: int) -> list[Comment]:
        found = await self._pages(f"/issues/{number}/comments", models.IssueComment)
        return [_comment(comment) for comment in found]

    async def list_repo_comments(self, *, since: str | None = None) -> list[Comment]:
        params = {"sort": "created", "direction": "asc"}
        if since is not None:
            params["since"] = since
        found = await self._pages("/issues/comments", models.IssueComment, params)
        return [_comment(comment) for comment in found]

    async def react(self, comment_id: int, content: str) -> None:
        await self._call(
            "POST",
            f"/issues/comments/{comment_id}/reactions",
            models.Reaction,
            body={"content": content},
        )

    async def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        now = await self._call(
            "POST", f"/issues/{number}/labels", list[models.Label], body={"labels": list(labels)}
        )
        return tuple(label.name for label in now)

    async def remove_label(self, number: int, label: str) -> tuple[str, ...] | None:
        try:
            left = await self._call(
                "DELETE", f"/issues/{number}/labels/{quote(label, safe='')}", list[models.Label]
            )
        except ForgeNotFound as exc:
            if "label does not exist" not in exc.message.lower():
                raise
            return None
        return tuple(item.name for item in left)

    async def close(self, number: int) -> None:
        await self._call("PATCH", f"/issues/{number}", models.Issue, body={"state": "closed"})

    # -- pull requests -------------------------------------------------------------------------

    async def find_pull(self, head: str) -> PullRequest | None:
        owner = self._repo.split("/", 1)[0]
        params = {"head": f"{owner}:{head}", "state": "open"}
        found = await self._call("GET", "/pulls", list[models.PullRequestSimple], params=params)
        return await self.get_pull(found[0].number) if found else None

    async def open_pull(
        self, *, title: PublicText, body: PublicText, head: str, base: str
    ) -> OpenedPull:
        wanted = {"title": title, "body": body, "head": head, "base": base}
        try:
            made = await self._call("POST", "/pulls", models.PullRequest, body=wanted)
        except ForgeRefused as exc:
            if _ALREADY_EXISTS not in exc.message.lower():
                raise
            existing = await self.find_pull(head)
            if existing is None:
                raise
            return OpenedPull(existing, created=False)
        return OpenedPull(_pull(made), created=True)

    async def get_pull(self, number: int) -> PullRequest:
        return _pull(await self._call("GET", f"/pulls/{number}", models.PullRequest))

    async def list_reviews(self, number: int) -> list[Review]:
        found = await self._pages(f"/pulls/{number}/reviews", models.PullRequestReview)
        return [_review(review) for review in found]

    async def list_review_comments(self, number: int) -> list[ReviewComment]:
        found = await self._pages(f"/pulls/{number}/comments", models.PullRequestReviewComment)
        return [_review_comment(comment) for comment in found]

    async def checks(self, sha: str) -> Checks:
        runs: list[CheckResult] = []
        page = 1
        while True:
            answer = await self._call(
                "GET",
                f"/commits/{quote(sha, safe='')}/check-runs",
                models.ReposOwnerRepoCommitsRefCheckRunsGetResponse200,
                params={"per_page": str(_PAGE), "page": str(page)},
            )
            runs += [_check_run(run) for run in answer.check_runs]
            if len(answer.check_runs) < _PAGE:
                break
            page += 1
        combined = await self._call(
            "GET", f"/commits/{quote(sha, safe='')}/status", models.CombinedCommitStatus
        )
        statuses = [_status(status) for status in combined.statuses]
        return Checks(sha, tuple(runs + statuses))

    async def permission(self, login: str) -> str:
        found = await self._call(
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
            found = await self._call(
                "GET", f"{path}/{quote(login, safe='')}", models.TeamMembership, root=True
            )
        except ForgeNotFound:
            return False  # not a member (or a team this token cannot see)
        return str(found.state) == "active"

    async def labelled_by(self, number: int) -> Mapping[str, str]:
        found = await self._pages(f"/issues/{number}/events", models.IssueEvent)
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
            done = await self._call(
                "PUT", f"/pulls/{number}/merge", models.PullRequestMergeResult, body=asked
            )
        except ForgeError as exc:
            if exc.status == 405:
                return MergeOutcome("not_mergeable", None, exc.message)
            if exc.status == 409:
                return MergeOutcome("head_changed", None, exc.message)
            raise
        return MergeOutcome("merged", done.sha, done.message)

    # -- one request ---------------------------------------------------------------------------

    async def _pages(
        self, path: str, model: type[M], params: Mapping[str, str] | None = None
    ) -> list[M]:
        found: list[M] = []
        page = 1
        while True:
            asked = {**(params or {}), "per_page": str(_PAGE), "page": str(page)}
            batch = await self._call("GET", path, list[model], params=asked)  # type: ignore[valid-type]
            found += batch
            if len(batch) < _PAGE:
                return found
            page += 1

    async def _call(
        self,
        method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"],
        path: str,
        model: Any,
        *,
        params: Mapping[str, str] | None = None,
        body: Mapping[str, Any] | None = None,
        root: bool = False,
    ) -> Any:
        url = path if root else self._prefix + path  # ``root``: not under the repository
        where = f"{method} {url}"
        key = url + "?" + "&".join(f"{k}={v}" for k, v in sorted((params or {}).items()))
        tries, rate_waited = 0, 0.0
        while True:
            headers = {}
            etag = self._cache.etag(key) if method == "GET" else None
            if etag is not None:
                headers["If-None-Match"] = etag
            answer = await self._send(method, url, params, body, headers)
            if isinstance(answer, _Failure):
                # Raised here, outside the client's exception: nothing chains to its request,
                # which holds the Authorization header.
                wait = self._pacing.rate_wait(
                    answer.status or 0, answer.headers, answer.message, rate_waited
                )
                if wait is not None:
                    _log.info("GitHub rate limit on %s: waiting %.0f s", where, wait)
                    self._counter.retried += 1
                    rate_waited += wait
                    await self._pacing.pause(wait)
                    continue
                if answer.status is None or answer.status >= 500:
                    backoff = self._pacing.server_wait(tries)
                    if backoff is not None:
                        _log.info("GitHub answered %s to %s: trying again", answer.status, where)
                        tries += 1
                        self._counter.retried += 1
                        await self._pacing.pause(backoff)
                        continue
                raise _error(where, answer, self._pacing)
            if answer.status_code == 304:
                cached = self._cache.body(key)
                if cached is None:
                    raise ForgeError(where, 304, "not modified, but nothing was remembered")
                self._counter.not_modified += 1
                return self._parse(where, model, cached)
            self._counter.full += 1
            content = answer.content
            if method == "GET":
                self._cache.store(key, answer.headers.get("etag"), content)
            if not content.strip():
                content = b"[]" if _is_list(model) else b"{}"
            return self._parse(where, model, content)

    async def _send(
        self,
        method: str,
        url: str,
        params: Mapping[str, str] | None,
        body: Mapping[str, Any] | None,
        headers: dict[str, str],
    ) -> Response[Any] | _Failure:
        try:
            return await self._client.arequest(
                method, url, params=dict(params or {}), json=body, headers=headers
            )
        except RequestFailed as exc:
            raw = exc.response
            lowered = {name.lower(): value for name, value in raw.headers.items()}
            return _Failure(raw.status_code, lowered, _message(raw.raw_response.content))
        except RequestError as exc:
            return _Failure(None, {}, f"no answer ({type(exc.exc).__name__})")

    @staticmethod
    def _parse(where: str, model: Any, content: bytes) -> Any:
        try:
            return _adapter(model).validate_json(content)
        except ValidationError as exc:
            first = exc.errors()[0]
            at = ".".join(str(part) for part in first["loc"])
            raise ForgeError(
                where, None, f"answer not in GitHub's shape: {at}: {first['msg']}"
            ) from None


def _is_list(model: Any) -> bool:
    return getattr(model, "__origin__", None) is list


def _message(raw: bytes) -> str:
    try:
        data = json.loads(raw)
    except ValueError:
        data = None
    if not isinstance(data, dict):
        text = raw.decode("utf-8", "replace").strip()[:200]
        return secret_mask.mask()(text) or "no message"
    message = str(data.get("message") or "no message")
    details = [
        str(error.get("message") or error.get("code"))
        for error in data.get("errors") or []
        if isinstance(error, dict) and (error.get("message") or error.get("code"))
    ]
    if details:
        message += ": " + "; ".join(details)
    return secret_mask.mask()(message)


@dataclass(frozen=True)
class _Failure:
    """A request that got no good answer: ``status`` None when none came at all."""

    status: int | None
    headers: Mapping[str, str]
    message: str


def _error(where: str, failure: _Failure, pacing: Pacing) -> ForgeError:
    status, message = failure.status, failure.message
    if status is None:
        return ForgeUnavailable(where, None, message)
    if status in (403, 429) and pacing.announced_wait(status, failure.headers, message) is not None:
        return ForgeUnavailable(
            where, status, f"{message} (rate limited for longer than the client may wait)"
        )
    if status in (401, 403):
        return ForgeAuthError(where, status, message)
    if status == 404:
        return ForgeNotFound(where, status, message)
    if status == 422:
        return ForgeRefused(where, status, message)
    if status >= 500:
        return ForgeUnavailable(where, status, message)
    return ForgeError(where, status, message)


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
