"""Whose word counts on the forge: the people a review or a review comment is taken from.

By default the people with write access to the repository: GitHub's ``author_association``
OWNER, MEMBER or COLLABORATOR. Any other association is not decisive (an organisation member
whose membership is private shows as CONTRIBUTOR or NONE to some tokens): the repository's
collaborators API (``Forge.permission``) confirms it, admin, maintain or write being trusted,
asked once a login a run (``Trust`` keeps the answers). MANNEQUIN (a placeholder for imported
content) is nobody.

The run config's ``forge.trusted`` changes who: GitHub logins (trusted whatever their
association), the word ``collaborators`` (the default rule, so ``[collaborators, ci-bot]``
widens it by one login and ``[alice, bob]`` narrows it to two people), or ``anyone`` alone
(every author, for a private repository that wants it). Empty: ``[collaborators]``.

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

    @classmethod
    def of(cls, trusted: Sequence[str]) -> TrustRule:
        """The rule ``forge.trusted`` (validated by the config) says; empty: the default."""
        words = [entry.strip() for entry in trusted if entry.strip()] or [COLLABORATORS]
        return cls(
            anyone=ANYONE in words,
            collaborators=COLLABORATORS in words,
            logins=frozenset(w.lower() for w in words if w not in (ANYONE, COLLABORATORS)),
        )

    def describe(self) -> str:
        if self.anyone:
            return "anyone"
        named = sorted(self.logins)
        if self.collaborators:
            named.insert(0, "people with write access")
        return ", ".join(named)


@dataclass(frozen=True)
class Heard:
    """Reviews and review comments sorted: ``reviews`` and ``comments`` from trusted people,
    ``ignored`` how many came from others (nothing of theirs is kept)."""

    reviews: tuple[Review, ...]
    comments: tuple[ReviewComment, ...]
    ignored: int


class Trust:
    """Who is trusted on ``forge``'s repository under ``rule``; the collaborators API's
    answers kept for the life of this object (one run)."""

    def __init__(self, forge: Forge, rule: TrustRule) -> None:
        self._forge = forge
        self.rule = rule
        self._confirmed: dict[str, bool] = {}

    async def trusts(self, login: str, association: Association) -> bool:
        """Whether ``login`` (whose association GitHub gave as ``association``) is trusted.
        A forge that does not answer raises (``ForgeError``): nothing is decided on it."""
        rule = self.rule
        if rule.anyone:
            return True
        if not login:
            return False  # a deleted account ("ghost"): nobody to trust
        if login.lower() in rule.logins:
            return True
        if not rule.collaborators or association in _NOBODY:
            return False
        if association in TRUSTED:
            return True
        return await self._has_write(login)

    async def _has_write(self, login: str) -> bool:
        key = login.lower()
        known = self._confirmed.get(key)
        if known is not None:
            return known
        try:
            role = await self._forge.permission(login)
        except (ForgeNotFound, ForgeAuthError) as exc:
            # No such user, or a token that may not read the repository's collaborators:
            # not confirmed, so not trusted (said once).
            log.warning("%s is not trusted: their permission could not be read: %s", login, exc)
            role = "none"
        trusted = self._confirmed[key] = role in WRITE_ROLES
        return trusted

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
