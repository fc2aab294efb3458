"""What the fake GitHub holds: issues (a pull request is an issue with a ``Pull`` part, as on
GitHub, sharing its numbers), comments, reviews, review comments, check runs and statuses,
branch protection, and each request it answered."""

from __future__ import annotations

from dataclasses import dataclass, field

__all__ = [
    "CheckRunRecord",
    "CommentRecord",
    "IssueRecord",
    "LabelEvent",
    "Protection",
    "Pull",
    "ReactionRecord",
    "RecordedRequest",
    "ReviewCommentRecord",
    "ReviewRecord",
    "StatusRecord",
]


@dataclass
class Pull:
    head: str
    base: str
    head_sha: str
    merged: bool = False
    merged_at: int | None = None
    merged_by: str | None = None
    merge_commit_sha: str | None = None


@dataclass
class IssueRecord:
    number: int
    title: str
    body: str
    author: str
    created: int
    updated: int
    state: str = "open"
    closed: int | None = None
    labels: list[str] = field(default_factory=list)
    comments: list[CommentRecord] = field(default_factory=list)
    pull: Pull | None = None
    events: list[LabelEvent] = field(default_factory=list)  # its labels put on and taken off
    requested: dict[str, None] = field(default_factory=dict)  # a pull's asked, not reviewed


@dataclass(frozen=True)
class LabelEvent:
    """An issue event of kind ``labeled`` or ``unlabeled``: who, which label, when."""

    id: int
    event: str
    actor: str
    label: str
    at: int


@dataclass
class CommentRecord:
    id: int
    body: str
    author: str
    created: int
    # GitHub's author_association of ``author``; None: the one the site gives ``author``
    association: str | None = None


@dataclass
class ReactionRecord:
    id: int
    author: str
    content: str  # +1 | -1 | laugh | confused | heart | hooray | rocket | eyes
    created: int


@dataclass
class ReviewRecord:
    id: int
    reviewer: str
    state: str  # APPROVED | CHANGES_REQUESTED | COMMENTED | DISMISSED
    body: str
    commit_id: str  # the pull request's head when the review was made
    submitted: int
    association: str = "NONE"  # the reviewer's author_association then


@dataclass
class ReviewCommentRecord:
    id: int
    review_id: int
    reviewer: str
    path: str
    line: int
    body: str
    commit_id: str
    created: int
    association: str = "NONE"


@dataclass
class CheckRunRecord:
    id: int
    name: str
    status: str
    conclusion: str | None
    summary: str
    text: str
    started: int
    completed: int | None


@dataclass
class StatusRecord:
    id: int
    context: str
    state: str
    description: str
    created: int


@dataclass(frozen=True)
class Protection:
    """Branch protection on a base: approvals and passing checks required, or every merge
    refused with ``refuse`` (GitHub's message)."""

    required_approvals: int = 0
    required_checks: tuple[str, ...] = ()
    refuse: str | None = None


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str  # with its query
    status: int
    conditional: bool  # it carried If-None-Match
    authorization: str  # the scheme, the credential masked ("token ***"), or ""
