"""A fake GitHub on 127.0.0.1: the REST endpoints a forge client uses, over a real bare
repository, scripted from Python::

    from orchestrator.testing.fake_github import FakeGitHub

    people = {"alice": "COLLABORATOR"}  # author_association; the owner is OWNER, others NONE
    with FakeGitHub(bare_repo, owner="o", repo="r", token="t0ken-for-tests", people=people) as gh:
        number = gh.create_issue("Fix the parser", labels=["council"])
        ...  # point a client at gh.api_url with the token
        gh.add_review(pr, "alice", "CHANGES_REQUESTED", comments=[("a.py", 3, "why?")])
        gh.set_check_run(sha, "ci", conclusion="failure", text="...")
        gh.fail_next(2)            # the next two requests answer 502
        gh.rate_limit_next(1, status=429, retry_after=0)

It answers under ``/api/v3`` (GitHub Enterprise Server's form, so a client's base path is
exercised). Answers carry an ETag and a GET whose ``If-None-Match`` matches gets 304. Merges
(``PUT pulls/N/merge``) are real git merges in the bare repository; 405 when the head conflicts
or branch protection refuses, 409 ("Head branch was modified. Review and try the merge again.")
when ``sha`` is not the head. Reviews carry their author's ``author_association`` and the head
they were made on (``commit_id``); ``collaborators/{login}/permission`` answers each login's
role, ``/orgs/{org}/teams/{team}/memberships/{login}`` a team's members (``set_team``), and
``issues/{n}/events`` who put each label on and took it off (``label``, ``unlabel``; an issue's
labels at its creation are its author's, as an issue template's are). Every request is recorded, its
token masked (``requests``). Routing and answers live in ``routes``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from functools import partial
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from types import TracebackType
from typing import Any

from orchestrator.testing.fake_github import shapes
from orchestrator.testing.fake_github.branches import delete_branch
from orchestrator.testing.fake_github.records import RecordedRequest
from orchestrator.testing.fake_github.routes import handle
from orchestrator.testing.fake_github.site import API_PREFIX, Answer, GitHubSite
from orchestrator.testing.local_server import LocalServer

__all__ = ["FakeGitHub"]

_MAX_BODY = 1 << 20


class FakeGitHub:
    """The server over a ``GitHubSite``. Use it as a context manager, or ``start()`` and
    ``stop()``. The site's scripting methods are the fake's own (``gh.create_issue``...)."""

    def __init__(
        self,
        bare_repo: Path,
        *,
        owner: str = "o",
        repo: str = "r",
        token: str,
        default_branch: str = "main",
        people: Mapping[str, str] | None = None,
    ) -> None:
        site = GitHubSite(
            bare_repo,
            owner=owner,
            repo=repo,
            token=token,
            default_branch=default_branch,
            people=people,
        )
        self.site = site
        self.git = site.git
        self.create_label = site.create_label
        self.create_issue = site.create_issue
        self.open_pull = site.open_pull
        self.set_association = site.set_association
        self.set_team = site.set_team
        self.label = site.label
        self.unlabel = site.unlabel
        self.add_review = site.add_review
        self.review_while_read = site.review_while_read
        self.set_check_run = site.set_check_run
        self.set_status = site.set_status
        self.protect = site.protect
        self.human_merge = site.human_merge
        self.human_close = site.human_close
        self.delete_branch = partial(delete_branch, site)
        self.force_push = site.force_push
        self.scopeless_token = site.scopeless_token
        self.fail_next = site.fail_next
        self.rate_limit_next = site.rate_limit_next
        self.exhaust_next = site.exhaust_next
        self.clear_requests = site.clear_requests
        self._server = LocalServer(_handler(site), "fake-github")

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeGitHub:
        if not self._server.running:
            self._server.start()
            site = self.site
            site.urls = shapes.Urls(self.web_url, self.api_url, site.owner, site.repo)
        return self

    def stop(self) -> None:
        self._server.stop()

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        trace: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def web_url(self) -> str:
        return f"http://127.0.0.1:{self._server.port('the fake GitHub')}"

    @property
    def api_url(self) -> str:
        return self.web_url + API_PREFIX

    @property
    def requests(self) -> list[RecordedRequest]:
        """Every request answered so far, its token masked."""
        return self.site.requests

    def fetched(self, *, conditional: bool | None = None) -> int:
        """How many requests were answered, or of them how many were (not) conditional."""
        return sum(1 for r in self.requests if conditional is None or r.conditional == conditional)


def etag(body: bytes) -> str:
    return 'W/"' + hashlib.sha256(body).hexdigest() + '"'


def _handler(fake: GitHubSite) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        server_version = "FakeGitHub/1"

        def do_GET(self) -> None:  # http.server's naming
            self._serve()

        def do_POST(self) -> None:
            self._serve()

        def do_PUT(self) -> None:
            self._serve()

        def do_PATCH(self) -> None:
            self._serve()

        def do_DELETE(self) -> None:
            self._serve()

        def _serve(self) -> None:
            headers = {name.lower(): value for name, value in self.headers.items()}
            length = int(headers.get("content-length", "0") or 0)
            raw = self.rfile.read(min(length, _MAX_BODY)) if length > 0 else b""
            try:
                payload = json.loads(raw) if raw.strip() else {}
            except ValueError:
                payload = None
            answer: Answer = handle(fake, self.command, self.path, headers, payload)
            body = b"" if answer.body is None else json.dumps(answer.body).encode()
            conditional = "if-none-match" in headers
            sent_headers = list(answer.headers)
            status = answer.status
            if self.command == "GET" and status == 200:
                tag = etag(body)
                sent_headers.append(("ETag", tag))
                if headers.get("if-none-match") == tag:
                    status, body = 304, b""
            fake.record(
                RecordedRequest(
                    self.command, self.path, status, conditional, _masked(headers, fake.token)
                )
            )
            self.send_response(status)
            if status != 304:
                self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.send_header("X-GitHub-Request-Id", f"FAKE:{fake.tick()}")
            for name, value in sent_headers:
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(body)
            self.wfile.flush()

        def log_message(self, format: str, *args: Any) -> None:
            return  # requests are recorded, not printed

    return Handler


def _masked(headers: dict[str, str], token: str) -> str:
    value = headers.get("authorization", "")
    if not value:
        return ""
    scheme = value.split(" ", 1)[0]
    return f"{scheme} ***".replace(token, "***")
