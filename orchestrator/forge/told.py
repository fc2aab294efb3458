"""A fact is told an issue once: across restarts of ``serve`` and across workstations.

Each thing council tells an issue or a pull request is a fact with a key (``skip:<digest of
the reason>``, ``started:issue-3:0``, ``pull:issue-3:7``...). ``Told.tell(number, key, text)``
posts ``text`` carrying council's hidden marker of ``key`` (``public_text.with_marker``:
``<!-- council:fact:<key> -->``) unless a comment on that issue carries it already.

The issue's own comments are the record, not the state store: they are what the readers of the
issue see, so they are right by definition; they survive a lost or reset state directory and
are shared by every workstation serving the repository, whatever store each one has; and there
is no second write to lose (a record written after the comment is lost by a crash between the
two, and the comment posted again; written before it, the crash loses the comment).

Only markers in comments from the repository's own people count: people with write access
(``trust.WRITE_ACCESS``: the OWNER, anyone else confirmed by the collaborators API, whatever
``forge.trusted`` says), or an app's account (which can comment only where it was installed).
An outsider (or a read-only collaborator) who copies a marker into a comment silences nothing.

Cost: one read of the issue's comments (paged, through the forge's ETag cache) the first time a
process tells that issue anything, none for an issue the run's sources just listed with no
comment (``saw``: the run's sources and its voice share one ``Told``); after that it knows what
it posted itself. Two processes
telling the same fact within that read and their post may both post it: the window is one
request, where a record in a shared store would have the same one.
"""

from __future__ import annotations

import logging

from orchestrator.forge.base import Forge
from orchestrator.forge.public_text import PublicText, markers, with_marker
from orchestrator.forge.trust import WRITE_ACCESS, Trust

__all__ = ["Told"]

_log = logging.getLogger(__name__)


class Told:
    """The facts told to each issue of one forge (module doc); ``trust``: the run's, whose
    answers it shares (its rule is always write access)."""

    def __init__(self, forge: Forge, trust: Trust | None = None) -> None:
        self._forge = forge
        self._writers = (trust or Trust(forge, WRITE_ACCESS)).with_rule(WRITE_ACCESS)
        self._known: dict[int, set[str]] = {}

    def saw(self, number: int, comments: int) -> None:
        """Issue ``number`` as just read (a list of issues) had ``comments`` comments: with
        none, it was told nothing, and the first fact costs no read of its comments."""
        if comments == 0:
            self._known.setdefault(number, set())

    async def facts(self, number: int) -> frozenset[str]:
        """The keys of the facts issue ``number`` was told (read from it the first time)."""
        known = self._known.get(number)
        if known is None:
            found: set[str] = set()
            for comment in await self._forge.list_comments(number):
                keys = markers(comment.body)
                if keys and (
                    comment.is_bot
                    or await self._writers.trusts(comment.author, comment.association)
                ):
                    found |= keys
            # merged: a fact told while this read was under way (the run's voice and its
            # sources share one ``Told``) stays known
            known = self._known.setdefault(number, set())
            known |= found
        return frozenset(known)

    async def tell(self, number: int, key: str, text: PublicText) -> bool:
        """Post ``text`` on issue ``number`` unless it was told ``key``; whether it posted."""
        if key in await self.facts(number):
            _log.info("issue #%d was told %s already", number, key)
            return False
        await self._forge.comment(number, with_marker(text, key))
        self._known[number].add(key)
        return True
