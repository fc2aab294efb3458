"""What the landing loop asks of a forge, and the values it gets back.

The values are frozen dataclasses of plain types, so nothing above this package sees the
client library's models; ``orchestrator.forge.github`` translates GitHub's objects into them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal, Protocol, get_args

from orchestrator.forge.public_text import PublicText

__all__ = [
    "ASSOCIATIONS",
    "FAILED",
    "IN_REVIEW",
    "TRUSTED",
    "WORKING",
    "Association",
    "CheckResult",
    "Checks",
    "Comment",
    "Forge",
    "Issue",
    "IssueFilter",
    "MergeMethod",
    "MergeOutcome",
    "OpenedPull",
    "PullRequest",
    "RequestCount",
    "Review",
    "ReviewComment",
    "approvals",
    "latest_reviews",
]

WORKING = "council:working"
IN_REVIEW = "council:in-review"
FAILED = "council:failed"

IssueFilter = Literal["open", "closed", "all"]
MergeMethod = Literal["merge", "squash", "rebase"]
ReviewState = Literal["APPROVED", "CHANGES_REQUESTED", "COMMENTED", "DISMISSED", "PENDING"]
CheckState = Literal["success", "failure", "pending", "none"]
Association = Literal[
    "OWNER",
    "MEMBER",
    "COLLABORATOR",
    "CONTRIBUTOR",
    "FIRST_TIMER",
    "FIRST_TIME_CONTRIBUTOR",
    "MANNEQUIN",
    "NONE",
]
"""The author's relation to the repository, as GitHub says it (``author_association``)."""
ASSOCIATIONS: tuple[Association, ...] = get_args(Association)


@dataclass(frozen=True)
class Issue:
    number: int
    title: str
    body: str
    state: Literal["open", "closed"]
    labels: tuple[str, ...]
    author: str
    url: str
    comments: int = 0  # how many comments it has (its pull request's review comments apart)
    association: Association = "NONE"  # its author's ``author_association``


# Write access to the repository, by the association alone.
TRUSTED: frozenset[Association] = frozenset({"OWNER", "MEMBER", "COLLABORATOR"})


@dataclass(frozen=True)
class Comment:
    """A comment on an issue or a pull request (its conversation): ``association`` is the
    author's ``author_association`` with the repository (OWNER, MEMBER, COLLABORATOR,
    CONTRIBUTOR, NONE ...), ``issue`` the number it is on, ``updated_at`` GitHub's ISO time."""

    id: int
    body: str
    author: str
    # GitHub's ``author_association``: OWNER, MEMBER, COLLABORATOR (write access), CONTRIBUTOR,
    # FIRST_TIMER, FIRST_TIME_CONTRIBUTOR, MANNEQUIN, NONE; ``is_bot``: an app's account
    association: Association = "NONE"
    is_bot: bool = False
    issue: int = 0
    updated_at: str = ""


@dataclass(frozen=True)
class PullRequest:
    number: int
    title: str
    body: str
    state: Literal["open", "closed"]
    merged: bool
    head: str  # the branch
    head_sha: str
    base: str
    mergeable: bool | None  # None: the forge has not computed it yet
    mergeable_state: str
    url: str


@dataclass(frozen=True)
class OpenedPull:
    """The pull request for a head branch: ``created`` False when one was already open."""

    pull: PullRequest
    created: bool


@dataclass(frozen=True)
class Review:
    id: int
    reviewer: str
    state: ReviewState
    body: str
    commit_id: str  # the head the review was made on
    submitted_at: str | None
    association: Association = "NONE"  # the reviewer's (``orchestrator.forge.trust``)


@dataclass(frozen=True)
class ReviewComment:
    id: int
    review_id: int | None
    reviewer: str
    path: str
    line: int | None  # None: the comment is on a line the current diff no longer has
    body: str
    association: Association = "NONE"  # the reviewer's (``orchestrator.forge.trust``)


@dataclass(frozen=True)
class CheckResult:
    """One check run or one commit status on a commit."""

    name: str
    kind: Literal["check_run", "status"]
    status: str  # check runs: queued | in_progress | completed ...; statuses: their state
    conclusion: str | None  # success | failure | neutral | cancelled | skipped | timed_out ...
    summary: str
    text_tail: str  # the last lines of the check's output text (check runs only)
    url: str | None

    @property
    def state(self) -> CheckState:
        if self.kind == "status":
            if self.status == "success":
                return "success"
            return "pending" if self.status == "pending" else "failure"
        if self.status != "completed":
            return "pending"
        good = ("success", "neutral", "skipped")
        return "success" if self.conclusion in good else "failure"


@dataclass(frozen=True)
class Checks:
    """Every check run and commit status on ``sha``; ``state`` combines them."""

    sha: str
    results: tuple[CheckResult, ...]

    @property
    def state(self) -> CheckState:
        states = {result.state for result in self.results}
        if not states:
            return "none"
        if "failure" in states:
            return "failure"
        return "pending" if "pending" in states else "success"

    @property
    def failing(self) -> tuple[CheckResult, ...]:
        return tuple(result for result in self.results if result.state == "failure")


@dataclass(frozen=True)
class MergeOutcome:
    """``merged`` (``sha`` the new commit on the base), ``not_mergeable`` (a conflict, a
    protection rule, a failing required check: the forge's ``message`` says which) or
    ``head_changed`` (the head moved past the sha the merge expected)."""

    kind: Literal["merged", "not_mergeable", "head_changed"]
    sha: str | None
    message: str


@dataclass(frozen=True)
class RequestCount:
    """Requests sent: ``full`` answered with a body, ``not_modified`` 304s from the ETag cache
    (which GitHub does not count against the rate limit), ``retried`` repeats after a 5xx or a
    rate limit."""

    full: int
    not_modified: int
    retried: int

    @property
    def total(self) -> int:
        return self.full + self.not_modified


def latest_reviews(reviews: Sequence[Review]) -> Mapping[str, Review]:
    """Each reviewer's latest review that decides something (a plain comment or a pending one
    does not replace an approval or a change request), in the order ``reviews`` came."""
    latest: dict[str, Review] = {}
    for review in reviews:
        if review.state in ("APPROVED", "CHANGES_REQUESTED", "DISMISSED"):
            latest[review.reviewer] = review
    return latest


def approvals(reviews: Sequence[Review], head_sha: str | None = None) -> tuple[str, ...]:
    """The reviewers whose latest deciding review approves (``head_sha`` given: approves that
    very commit; an approval of an earlier head does not count for a newer one)."""
    return tuple(
        name
        for name, review in latest_reviews(reviews).items()
        if review.state == "APPROVED" and (head_sha is None or review.commit_id == head_sha)
    )


class Forge(Protocol):
    """One repository on a forge. Every method may raise ``orchestrator.errors.ForgeError``."""

    @property
    def repo(self) -> str: ...

    def requests(self) -> RequestCount: ...

    async def list_issues(
        self, *, state: IssueFilter = "open", labels: Sequence[str] = ()
    ) -> list[Issue]:
        """Issues (never pull requests) in ``state`` carrying every label in ``labels``."""
        ...

    async def get_issue(self, number: int) -> Issue: ...

    async def comment(self, number: int, body: PublicText) -> Comment:
        """Comment on an issue or a pull request (``public_text`` made ``body``)."""
        ...

    async def list_comments(self, number: int) -> list[Comment]:
        """Every comment on an issue or a pull request (not its review comments), oldest
        first."""
        ...

    async def list_repo_comments(self, *, since: str | None = None) -> list[Comment]:
        """The comments on every issue and pull request of the repository (their
        conversations, not review comments), oldest first; ``since``: only those updated at
        or after that ISO 8601 time."""
        ...

    async def react(self, comment_id: int, content: str) -> None:
        """Put reaction ``content`` (``+1``, ``eyes`` ...) on comment ``comment_id``."""
        ...

    async def add_labels(self, number: int, labels: Sequence[str]) -> tuple[str, ...]:
        """Add ``labels``; the labels it carries now."""
        ...

    async def remove_label(self, number: int, label: str) -> tuple[str, ...] | None:
        """Remove ``label``; nothing happens when it was not there. The labels the issue has
        left, when the forge says (None when it does not)."""
        ...

    async def find_pull(self, head: str) -> PullRequest | None:
        """The open pull request whose head is branch ``head`` of this repository."""
        ...

    async def open_pull(
        self, *, title: PublicText, body: PublicText, head: str, base: str
    ) -> OpenedPull:
        """Open a pull request; the one already open for ``head`` when there is one."""
        ...

    async def get_pull(self, number: int) -> PullRequest: ...

    async def update_pull(
        self, number: int, *, base: str | None = None, body: PublicText | None = None
    ) -> PullRequest:
        """Change an open pull request: ``base`` retargets it to that branch (its head and
        reviews stay), ``body`` replaces its description; the pull request as it now is."""
        ...

    async def request_reviews(self, number: int, reviewers: Sequence[str]) -> None:
        """Ask ``reviewers`` (logins) to review the pull request (again)."""
        ...

    async def list_reviews(self, number: int) -> list[Review]: ...

    async def list_review_comments(self, number: int) -> list[ReviewComment]: ...

    async def checks(self, sha: str) -> Checks: ...

    async def permission(self, login: str) -> str:
        """``login``'s role on the repository: admin, maintain, write, triage, read or none
        (``ForgeNotFound`` when no such user)."""
        ...

    async def in_team(self, org: str, team: str, login: str) -> bool:
        """Whether ``login`` is an active member of team ``team`` (its slug) of organisation
        ``org`` (a pending invitation is not; nor is anyone of a team the token cannot see)."""
        ...

    async def labelled_by(self, number: int) -> Mapping[str, str]:
        """Who last put each label issue ``number`` carries on it: label name -> login (from
        the issue's events; a label nobody is recorded to have put is absent)."""
        ...

    async def merge_pull(
        self, number: int, *, method: MergeMethod, expected_sha: str
    ) -> MergeOutcome: ...

    async def close(self, number: int) -> None:
        """Close an issue or a pull request."""
        ...
