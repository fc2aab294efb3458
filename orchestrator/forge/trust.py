"""Whose word counts on the forge: the people a review, a comment, a command, an issue or a
label is taken from.

By default the people with write access to the repository. GitHub's ``author_association``
says who is OWNER (trusted as such) but not who may write: a COLLABORATOR may have been invited
to read or triage only, a MEMBER of the owning organisation may have no write access to this
repository, and an organisation member whose membership is private shows as CONTRIBUTOR or
NONE to some tokens. So everyone but the OWNER is confirmed by the repository's collaborators
API (``Forge.permission``): admin, maintain or write is trusted. It is asked once a login a run
(``Trust`` keeps the answers; ``with_rule`` shares them). A token that may not read it (403,
404): a MEMBER or COLLABORATOR is taken at their association's word (said once in the log),
anyone else is not trusted. MANNEQUIN (a placeholder for imported content) is nobody.

The run config's ``forge.trusted`` changes who: GitHub logins (trusted whatever their
association), teams as ``@org/team-slug`` (their active members, by
``GET /orgs/{org}/teams/{slug}/memberships/{login}``, asked once a login and team a run), the
word ``collaborators`` (the default rule, so ``[collaborators, ci-bot]`` widens it by one login
and ``[alice, @acme/core]`` narrows it to one person and a team), or ``anyone`` alone (every
author, for a private repository that wants it). Empty: ``[collaborators]``.

An untrusted review never counts as an approval, never asks for changes, and its text (and
that of its comments) is never put in a prompt; ``Heard`` says how many were set aside.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import ForgeAuthError, ForgeNotFound
from orchestrator.forge.base import TRUSTED, Association, Forge, Review, ReviewComment

__all__ = [
    "ANYONE",
    "COLLABORATORS",
    "WRITE_ACCESS",
    "WRITE_ROLES",
    "Heard",
    "Trust",
    "TrustRule",
]

ANYONE = "anyone"
COLLABORATORS = "collaborators"
WRITE_ROLES = frozenset({"admin", "maintain", "write"})
_NOBODY: frozenset[Association] = frozenset({"MANNEQUIN"})

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class TrustRule:
    """``forge.trusted`` read: everybody, people with write access, and these logins
    (lowercase: GitHub's logins are case-insensitive)."""

    anyone: bool
    collaborators: bool
    logins: frozenset[str]
    teams: frozenset[tuple[str, str]] = frozenset()  # (organisation, team slug), lowercase

    @classmethod
    def of(cls, trusted: Sequence[str]) -> TrustRule:
        """The rule ``forge.trusted`` (validated by the config) says; empty: the default."""
        words = [entry.strip() for entry in trusted if entry.strip()] or [COLLABORATORS]
        named = [w.lower() for w in words if w not in (ANYONE, COLLABORATORS)]
        teams = {_team(w) for w in named if w.startswith("@")}
        return cls(
            anyone=ANYONE in words,
            collaborators=COLLABORATORS in words,
            logins=frozenset(w for w in named if not w.startswith("@")),
            teams=frozenset(teams),
        )

    def describe(self) -> str:
        if self.anyone:
            return "anyone"
        named = sorted(self.logins) + sorted(f"@{org}/{team}" for org, team in self.teams)
        if self.collaborators:
            named.insert(0, "people with write access")
        return ", ".join(named)


def _team(word: str) -> tuple[str, str]:
    org, _, team = word[1:].partition("/")
    return org, team


WRITE_ACCESS = TrustRule.of([COLLABORATORS])
"""The people with write access, whatever ``forge.trusted`` says: whose hidden markers on an
issue are taken as council's own (``told``)."""


@dataclass(frozen=True)
class Heard:
    """Reviews and review comments sorted: ``reviews`` and ``comments`` from trusted people,
    ``ignored`` how many came from others (nothing of theirs is kept)."""

    reviews: tuple[Review, ...]
    comments: tuple[ReviewComment, ...]
    ignored: int


class Trust:
    """Who is trusted on ``forge``'s repository under ``rule``; the forge's answers kept for
    the life of this object (one run) and shared with those ``with_rule`` makes."""

    def __init__(self, forge: Forge, rule: TrustRule) -> None:
        self._forge = forge
        self.rule = rule
        self._roles: dict[str, str] = {}  # login -> role ("" when it could not be read)
        self._teams: dict[tuple[str, str, str], bool] = {}  # (org, team, login) -> member
        self._unread_said = False

    def with_rule(self, rule: TrustRule) -> Trust:
        """The same forge under ``rule``, sharing what was asked of it."""
        other = Trust(self._forge, rule)
        other._roles, other._teams = self._roles, self._teams
        return other

    async def trusts(self, login: str, association: str = "NONE") -> bool:
        """Whether ``login`` (whose association GitHub gave as ``association``; NONE when the
        forge gave none, as on an issue's events) is trusted. A forge that does not answer
        raises (``ForgeError``): nothing is decided on it."""
        rule = self.rule
        if rule.anyone:
            return True
        if not login:
            return False  # a deleted account ("ghost"): nobody to trust
        if login.lower() in rule.logins:
            return True
        if (
            rule.collaborators
            and association not in _NOBODY
            and (association == "OWNER" or await self._has_write(login, association))
        ):
            return True
        for org, team in sorted(rule.teams):
            if await self._in_team(org, team, login):
                return True
        return False

    async def _has_write(self, login: str, association: str) -> bool:
        key = login.lower()
        role = self._roles.get(key)
        if role is None:
            try:
                role = await self._forge.permission(login)
            except (ForgeNotFound, ForgeAuthError) as exc:
                # No such user, or a token that may not read the repository's collaborators.
                if not self._unread_said:
                    log.warning("the collaborators API did not say %s's role: %s", login, exc)
                    self._unread_said = True
                role = ""
            self._roles[key] = role
        if role == "":
            return association in TRUSTED  # not confirmed: only their association's word
        return role in WRITE_ROLES

    async def _in_team(self, org: str, team: str, login: str) -> bool:
        key = (org, team, login.lower())
        member = self._teams.get(key)
        if member is None:
            try:
                member = await self._forge.in_team(org, team, login)
            except ForgeAuthError as exc:  # a token without read:org: nobody is in it
                log.warning("team @%s/%s could not be read: %s", org, team, exc)
                member = False
            self._teams[key] = member
        return member

    async def hear(
        self, reviews: Sequence[Review], comments: Sequence[ReviewComment] = ()
    ) -> Heard:
        """``reviews`` and ``comments`` sorted into the trusted people's and a count of the
        rest."""
        kept_reviews: list[Review] = []
        kept_comments: list[ReviewComment] = []
        ignored = 0
        for review in reviews:
            if await self.trusts(review.reviewer, review.association):
                kept_reviews.append(review)
            else:
                ignored += 1
        for comment in comments:
            if await self.trusts(comment.reviewer, comment.association):
                kept_comments.append(comment)
            else:
                ignored += 1
        return Heard(tuple(kept_reviews), tuple(kept_comments), ignored)
