"""The fake GitHub's state and rules: issues and pull requests (sharing their numbers, as on
GitHub), reviews, checks, branch protection, the people (each login's ``author_association``
and role), real merges in the bare repository, faults queued
for the next requests, and each request answered."""

from __future__ import annotations

import re
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from orchestrator.forge.base import ASSOCIATIONS
from orchestrator.testing.fake_github import objects, shapes
from orchestrator.testing.fake_github.bare import BareRepo, MergeConflict
from orchestrator.testing.fake_github.protection import refusal
from orchestrator.testing.fake_github.records import (
    CheckRunRecord,
    CommentRecord,
    IssueRecord,
    LabelEvent,
    Protection,
    Pull,
    ReactionRecord,
    RecordedRequest,
    ReviewCommentRecord,
    ReviewRecord,
    StatusRecord,
)

__all__ = ["API_PREFIX", "Answer", "GitHubSite"]

API_PREFIX = "/api/v3"


@dataclass(frozen=True)
class Answer:
    status: int
    body: Any = None  # JSON-able; None: no body
    headers: tuple[tuple[str, str], ...] = ()


class GitHubSite:
    """What the fake GitHub holds, the rules its endpoints share, and the scripting of the
    people and the CI around the repository (``FakeGitHub`` serves it)."""

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
        self.owner, self.repo, self.token = owner, repo, token
        self.default_branch = default_branch
        self.git = BareRepo(bare_repo)
        self.lock = threading.RLock()
        self.issues: dict[int, IssueRecord] = {}
        self.colors: dict[str, str] = {}
        self.reviews: dict[int, list[ReviewRecord]] = {}
        self.review_comments: dict[int, list[ReviewCommentRecord]] = {}
        self.check_runs: dict[str, list[CheckRunRecord]] = {}
        self.statuses: dict[str, list[StatusRecord]] = {}
        self.protection: dict[str, Protection] = {}
        # login -> author_association (the owner OWNER, anyone else NONE unless set here), and
        # the role the collaborators API gives when it is not what the association implies.
        self.associations: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        for login, association in (people or {}).items():
            self.set_association(login, association)
        self.teams: dict[tuple[str, str], set[str]] = {}  # (org, team slug) -> members
        self.scopeless_tokens: set[str] = set()
        self.reactions: dict[int, list[ReactionRecord]] = {}  # comment id -> its reactions
        self._faults: list[Answer] = []
        self._after_reviews_read: dict[int, list[Callable[[], object]]] = {}
        self._requests: list[RecordedRequest] = []
        self._tick = 0
        self._ids = 1000
        self.urls = shapes.Urls(
            "http://127.0.0.1:0", "http://127.0.0.1:0" + API_PREFIX, owner, repo
        )

    # -- what was asked ------------------------------------------------------------------------

    @property
    def requests(self) -> list[RecordedRequest]:
        with self.lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self.lock:
            self._requests.clear()

    def record(self, request: RecordedRequest) -> None:
        with self.lock:
            self._requests.append(request)

    # -- scripting: the people and the CI around the repository --------------------------------

    def tick(self) -> int:
        with self.lock:
            self._tick += 1
            return self._tick

    def new_id(self) -> int:
        with self.lock:
            self._ids += 1
            return self._ids

    def set_association(self, login: str, association: str, *, role: str | None = None) -> None:
        """``login``'s ``author_association`` from now on (COLLABORATOR, MEMBER, CONTRIBUTOR,
        NONE...), and (``role``) their role in the collaborators API when it is not the one
        the association implies (such as a MEMBER whose membership is private, shown as
        CONTRIBUTOR, with write access)."""
        if association not in ASSOCIATIONS:
            raise ValueError(f"{association!r} is not one of {', '.join(ASSOCIATIONS)}")
        with self.lock:
            self.associations[login.lower()] = association
            if role is not None:
                self.roles[login.lower()] = role
            else:
                self.roles.pop(login.lower(), None)

    def association(self, login: str) -> str:
        """``login``'s ``author_association`` on the repository."""
        with self.lock:
            if login.lower() == self.owner.lower():
                return "OWNER"
            return self.associations.get(login.lower(), "NONE")

    def role(self, login: str) -> str:
        """``login``'s role as the collaborators API says it (admin, maintain, write, triage,
        read, none): the one set, else what the association implies."""
        with self.lock:
            set_role = self.roles.get(login.lower())
            if set_role is not None:
                return set_role
            return _ROLE_OF.get(self.association(login), "read")

    def create_label(self, name: str, color: str = "ededed") -> None:
        with self.lock:
            self.colors[name] = color

    def create_issue(
        self, title: str, body: str = "", *, labels: Iterable[str] = (), author: str | None = None
    ) -> int:
        """An issue ``author`` opened (default: the repository's owner)."""
        with self.lock:
            number = len(self.issues) + 1
            now = self.tick()
            by = author if author is not None else self.owner
            self.issues[number] = IssueRecord(number, title, body, by, now, now)
            for name in labels:  # put on by the author (as an issue template's labels are)
                self.label(number, name, by=by)
            return number

    def label(self, number: int, name: str, *, by: str) -> None:
        """``by`` puts label ``name`` on issue ``number`` (recorded as a ``labeled`` event)."""
        with self.lock:
            record = self.issues[number]
            self.colors.setdefault(name, "ededed")  # GitHub creates a label it does not know
            if name not in record.labels:
                record.labels.append(name)
                record.events.append(LabelEvent(self.new_id(), "labeled", by, name, self.tick()))
            record.updated = self.tick()

    def unlabel(self, number: int, name: str, *, by: str) -> bool:
        """``by`` takes label ``name`` off issue ``number``; whether it was on."""
        with self.lock:
            record = self.issues[number]
            if name not in record.labels:
                return False
            record.labels.remove(name)
            record.events.append(LabelEvent(self.new_id(), "unlabeled", by, name, self.tick()))
            record.updated = self.tick()
            return True

    def set_team(self, org: str, team: str, members: Iterable[str]) -> None:
        """Team ``team`` (its slug) of organisation ``org`` has these active members now."""
        with self.lock:
            self.teams[(org.lower(), team.lower())] = {login.lower() for login in members}

    def in_team(self, org: str, team: str, login: str) -> bool:
        with self.lock:
            return login.lower() in self.teams.get((org.lower(), team.lower()), set())

    def open_pull(
        self, head: str, base: str, title: str, body: str = "", author: str = "octocat"
    ) -> int:
        """A pull request a person opened (the head branch must be in the bare repository)."""
        with self.lock:
            sha = self.git.tip(head)
            if sha is None:
                raise ValueError(f"branch {head!r} is not in the bare repository")
            number = self.create_issue(title, body, author=author)
            self.issues[number].pull = Pull(head, base, sha)
            return number

    def add_review(
        self,
        number: int,
        reviewer: str,
        state: Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED"],
        body: str = "",
        *,
        comments: Sequence[tuple[str, int, str]] = (),
    ) -> int:
        """A review of pull request ``number`` on its current head, with ``comments`` as
        (path, line, body); its id."""
        with self.lock:
            head = self.head_sha(number)
            association = self.association(reviewer)
            review = ReviewRecord(
                self.new_id(), reviewer, state, body, head, self.tick(), association
            )
            self.reviews.setdefault(number, []).append(review)
            self.issues[number].requested.pop(reviewer, None)  # a review answers the ask
            for path, line, text in comments:
                comment = ReviewCommentRecord(
                    self.new_id(),
                    review.id,
                    reviewer,
                    path,
                    line,
                    text,
                    head,
                    self.tick(),
                    association,
                )
                self.review_comments.setdefault(number, []).append(comment)
            return review.id

    def review_while_read(
        self,
        number: int,
        reviewer: str,
        state: Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED"],
        body: str = "",
        *,
        comments: Sequence[tuple[str, int, str]] = (),
    ) -> None:
        """A review (``add_review``'s arguments) submitted while a client reads: right after
        the next answer to the pull request's reviews list, so a client that reads the reviews
        and then the review comments sees the comments of a review it did not see."""
        with self.lock:
            self._after_reviews_read.setdefault(number, []).append(
                lambda: self.add_review(number, reviewer, state, body, comments=comments)
            )

    def reviews_read(self, number: int) -> None:
        """The reviews list of ``number`` was just answered (``review_while_read``)."""
        with self.lock:
            for submit in self._after_reviews_read.pop(number, []):
                submit()

    def set_check_run(
        self,
        sha: str,
        name: str,
        *,
        status: Literal["queued", "in_progress", "completed"] = "completed",
        conclusion: str | None = "success",
        summary: str = "",
        text: str = "",
    ) -> None:
        """The check run ``name`` on ``sha`` now says this (replacing an earlier one)."""
        with self.lock:
            runs = [run for run in self.check_runs.get(sha, []) if run.name != name]
            now = self.tick()
            done = conclusion if status == "completed" else None
            finished = now if status == "completed" else None
            record = CheckRunRecord(self.new_id(), name, status, done, summary, text, now, finished)
            self.check_runs[sha] = [*runs, record]

    def set_status(
        self,
        sha: str,
        context: str,
        state: Literal["error", "failure", "pending", "success"],
        description: str = "",
    ) -> None:
        with self.lock:
            kept = [status for status in self.statuses.get(sha, []) if status.context != context]
            record = StatusRecord(self.new_id(), context, state, description, self.tick())
            self.statuses[sha] = [*kept, record]

    def protect(
        self,
        branch: str,
        *,
        required_approvals: int = 0,
        required_checks: Sequence[str] = (),
        refuse: str | None = None,
    ) -> None:
        with self.lock:
            self.protection[branch] = Protection(required_approvals, tuple(required_checks), refuse)

    def human_merge(
        self, number: int, method: Literal["merge", "squash", "rebase"] = "merge"
    ) -> str:
        """A person merges pull request ``number`` on GitHub's page; the base's new tip."""
        answer = self.merge(number, method, None, by="octocat", checked=False)
        if answer.status != 200:
            raise ValueError(f"the merge was refused: {answer.body}")
        return str(answer.body["sha"])

    def human_close(self, number: int) -> None:
        with self.lock:
            self.close(number)

    def force_push(self, branch: str, files: dict[str, str], message: str = "force-pushed") -> str:
        """A person force-pushes ``branch``: a new commit on the base's tip, not descending from
        the branch's old tip; the new head."""
        with self.lock:
            return self.git.commit_files(
                branch, files, message, parent=self.git.tip(self.default_branch), force=True
            )

    def scopeless_token(self, token: str) -> None:
        """``token`` authenticates, but every write answers 403 (no scope)."""
        with self.lock:
            self.scopeless_tokens.add(token)

    # -- faults --------------------------------------------------------------------------------

    def fail_next(self, count: int, status: int = 502) -> None:
        """The next ``count`` requests answer ``status`` (a server error)."""
        self._fault(count, Answer(status, shapes.error("Server Error", status)))

    def rate_limit_next(
        self, count: int, *, status: Literal[403, 429] = 403, retry_after: int | None = 1
    ) -> None:
        """The next ``count`` requests hit the secondary rate limit (with ``retry-after``
        unless it is None: then only the message says so)."""
        message = "You have exceeded a secondary rate limit. Please wait a few minutes."
        headers = () if retry_after is None else (("retry-after", str(retry_after)),)
        self._fault(count, Answer(status, shapes.error(message, status), headers))

    def exhaust_next(self, count: int, reset_epoch: int) -> None:
        """The next ``count`` requests find the primary rate limit used up until ``reset_epoch``
        (``x-ratelimit-remaining: 0``)."""
        message = "API rate limit exceeded for user ID 1."
        headers = (
            ("x-ratelimit-limit", "5000"),
            ("x-ratelimit-remaining", "0"),
            ("x-ratelimit-reset", str(reset_epoch)),
        )
        self._fault(count, Answer(403, shapes.error(message, 403), headers))

    def clear_faults(self) -> None:  # the faults not met yet taken back: the next is answered
        with self.lock:
            self._faults.clear()

    def _fault(self, count: int, answer: Answer) -> None:
        with self.lock:
            self._faults += [answer] * count

    def next_fault(self) -> Answer | None:
        with self.lock:
            return self._faults.pop(0) if self._faults else None

    # -- the rules the endpoints share (called with the lock held by routes) -------------------

    def head_sha(self, number: int) -> str:
        record = self.issues[number]
        assert record.pull is not None
        live = self.git.tip(record.pull.head)
        if live is not None and not record.pull.merged:
            record.pull.head_sha = live
        return record.pull.head_sha

    def close(self, number: int) -> None:
        record = self.issues[number]
        if record.state != "closed":
            record.state = "closed"
            record.closed = record.updated = self.tick()

    def refusal(self, number: int) -> str | None:
        """Why branch protection refuses to merge ``number`` now (None: it does not)."""
        return refusal(self, number)

    def merge(
        self,
        number: int,
        method: Literal["merge", "squash", "rebase"],
        sha: str | None,
        *,
        by: str,
        checked: bool = True,
    ) -> Answer:
        with self.lock:
            record = self.issues.get(number)
            if record is None or record.pull is None:
                return Answer(404, shapes.error("Not Found", 404))
            part = record.pull
            head = self.head_sha(number)
            if part.merged or record.state != "open":
                return Answer(405, shapes.error("Pull Request is not mergeable", 405))
            if sha is not None and sha != head:
                message = "Head branch was modified. Review and try the merge again."
                return Answer(409, shapes.error(message, 409))
            refusal = self.refusal(number) if checked else None
            if refusal is not None:
                return Answer(405, shapes.error(refusal, 405))
            message = {
                "merge": f"Merge pull request #{number} from {self.owner}/{part.head}\n\n"
                f"{record.title}",
                "squash": f"{record.title} (#{number})\n\n{record.body}".strip(),
                "rebase": record.title,
            }[method]
            try:
                landed = self.git.merge(part.base, head, method, message)
            except MergeConflict:
                return Answer(405, shapes.error("Pull Request is not mergeable", 405))
            now = self.tick()
            part.merged, part.merged_at, part.merged_by = True, now, by
            part.merge_commit_sha = landed
            self.close(number)
            if part.base == self.default_branch:
                # As GitHub does: "Closes #N" (or fixes, resolves) in a pull request merged
                # into the default branch closes issue N.
                for closed in _closing(record.body):
                    if closed in self.issues and self.issues[closed].pull is None:
                        self.close(closed)
            body = {"sha": landed, "merged": True, "message": "Pull Request successfully merged"}
            return Answer(200, body)

    def pull_json(self, number: int) -> dict[str, Any]:
        record = self.issues[number]
        assert record.pull is not None
        head = self.head_sha(number)
        base_sha = self.git.tip(record.pull.base) or head
        mergeable: bool | None
        if record.state != "open":
            mergeable, state = None, "unknown"
        elif not self.git.mergeable(record.pull.base, record.pull.head):
            mergeable, state = False, "dirty"
        else:
            mergeable = True
            state = "blocked" if self.refusal(number) else "clean"
        return objects.pull(
            self.urls,
            record,
            self.colors,
            base_sha=base_sha,
            mergeable=mergeable,
            mergeable_state=state,
            review_comments=len(self.review_comments.get(number, [])),
            default_branch=self.default_branch,
        )

    def add_comment(
        self, number: int, body: str, author: str, *, association: str | None = None
    ) -> CommentRecord:
        """A comment by ``author``; ``association``: its ``author_association`` when not the
        one ``author`` has (``association``)."""
        with self.lock:
            comment = CommentRecord(self.new_id(), body, author, self.tick(), association)
            self.issues[number].comments.append(comment)
            self.issues[number].updated = comment.created
            return comment

    def comments(self) -> list[tuple[int, CommentRecord]]:
        """Every comment on every issue and pull request, with its number, oldest first."""
        with self.lock:
            found = [(n, c) for n, record in self.issues.items() for c in record.comments]
        return sorted(found, key=lambda pair: pair[1].id)

    def react(self, comment_id: int, author: str, content: str) -> tuple[ReactionRecord, bool]:
        """``author``'s reaction ``content`` on the comment: (it, whether it is new)."""
        with self.lock:
            mine = self.reactions.setdefault(comment_id, [])
            for known in mine:
                if known.author == author and known.content == content:
                    return known, False
            made = ReactionRecord(self.new_id(), author, content, self.tick())
            mine.append(made)
            return made, True


_ROLE_OF = {"OWNER": "admin", "MEMBER": "write", "COLLABORATOR": "write"}

_CLOSING = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+#(\d+)\b", re.IGNORECASE)


def _closing(body: str) -> list[int]:
    """The issues a pull request's body closes on merge (GitHub's closing keywords)."""
    return [int(number) for number in _CLOSING.findall(body or "")]
