"""Branch protection on the fake GitHub, as GitHub judges a merge: a rule's refusal, the
approvals of reviewers with write access (each one's latest deciding review), and the
required checks of the head."""

from __future__ import annotations

from typing import Protocol

from orchestrator.testing.fake_github.records import (
    CheckRunRecord,
    IssueRecord,
    Protection,
    ReviewRecord,
    StatusRecord,
)

__all__ = ["refusal"]


class GitHubSite(Protocol):
    """What of the site (``site.GitHubSite``) a merge's judgement reads."""

    issues: dict[int, IssueRecord]
    reviews: dict[int, list[ReviewRecord]]
    check_runs: dict[str, list[CheckRunRecord]]
    statuses: dict[str, list[StatusRecord]]
    protection: dict[str, Protection]

    def role(self, login: str) -> str: ...

    def head_sha(self, number: int) -> str: ...


_WRITE = ("admin", "maintain", "write")


def refusal(site: GitHubSite, number: int) -> str | None:
    """Why branch protection refuses to merge ``number`` now (None: it does not)."""
    record = site.issues[number]
    assert record.pull is not None
    rule = site.protection.get(record.pull.base)
    if rule is None:
        return None
    if rule.refuse:
        return rule.refuse
    latest: dict[str, str] = {}
    for review in site.reviews.get(number, []):
        # As GitHub's protection: only reviewers with write access count.
        if review.state != "COMMENTED" and site.role(review.reviewer) in _WRITE:
            latest[review.reviewer] = review.state
    approved = sum(1 for state in latest.values() if state == "APPROVED")
    if approved < rule.required_approvals or "CHANGES_REQUESTED" in latest.values():
        return (
            f"At least {rule.required_approvals} approving review is required by "
            "reviewers with write access."
        )
    head = site.head_sha(number)
    for name in rule.required_checks:
        if not _check_passed(site, head, name):
            return f'Required status check "{name}" is expected.'
    return None


def _check_passed(site: GitHubSite, sha: str, name: str) -> bool:
    for run in site.check_runs.get(sha, []):
        if run.name == name:
            return run.conclusion in ("success", "neutral", "skipped")
    return any(s.context == name and s.state == "success" for s in site.statuses.get(sha, []))
