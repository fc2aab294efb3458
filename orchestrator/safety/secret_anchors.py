"""Where a credential could be, found at C speed: the anchor each kind needs, in a whole batch.

``safety.secret_detect`` looks at a line with detect-secrets' plugins (or our shapes) only where
one of that kind's **anchors** is: a short literal (or a pattern starting with one) that every
match of the kind's own regexes holds on its line. ``Sweep.lines(block)`` searches each
distinct anchor once over a whole batch of lines (bytes joined by ``\\n``: a diff's added
lines as git wrote them, never decoded) and says, for each line one matched (by the offset
of its start), the kinds whose anchors did: a superset of the kinds the line can hold.

The anchors of a kind whose regexes ignore case (``folded``) are searched in the batch
lowered (``bytes.lower``: ASCII only, the same length, so offsets hold). Python's
``IGNORECASE`` also takes four non-ASCII letters for ASCII ones (the Kelvin sign for ``k``,
the long ``ſ`` for ``s``, dotless ``ı`` and dotted ``İ`` for ``i``): a line holding one is a
candidate of every folded kind, so nothing written with them slips past.

Every anchor is written here for its kind's regexes (``ANCHORS``; the test
``tests/safety/test_secret_anchors.py`` checks each against samples of the kind and against matches
generated from the plugins' own regexes). An anchor never matches a line break (no ``.``,
``\\s`` or negated class), so each match lies on one line. A pattern's ``\\d`` in detect-secrets
takes any Unicode digit: its anchor takes any non-ASCII byte there (``[0-9\\x80-\\xff]``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass

__all__ = ["ANCHORS", "ODD_CASE", "KindAnchors", "Sweep"]


@dataclass(frozen=True)
class KindAnchors:
    """One kind's anchors: ``cased`` searched as written, ``folded`` in the lowered batch."""

    cased: tuple[bytes, ...] = ()
    folded: tuple[bytes, ...] = ()


# The kinds of detect-secrets' plugins (their ``secret_type``), then our two line shapes.
# Each comment says what in the plugin's regexes the anchor stands for.
ANCHORS: Mapping[str, KindAnchors] = {
    # (?:\s|=|:|"|^)AKC..., (?:\s|=|:|"|^)AP[\dABCDEF]...
    "Artifactory Credentials": KindAnchors(cased=(rb"A(?:KC|P[0-9A-F\x80-\xff])",)),
    # (?:A3T[A-Z0-9]|ABIA|ACCA|AKIA|ASIA)...; aws.{0,20}?(?:key|...) ignoring case
    "AWS Access Key": KindAnchors(cased=(rb"A(?:3T|BIA|CCA|KIA|SIA)",), folded=(rb"aws",)),
    "Azure Storage Account access key": KindAnchors(cased=(rb"AccountKey=",)),
    "Basic Auth Credentials": KindAnchors(cased=(rb"://",)),
    # (?:cloudant|cl|clou)(?:_|-|)(?:api|)(?:key|pwd|pw|password|pass|token)...; the URL forms
    # hold ``.cloudant.com``; all ignoring case
    "Cloudant Credentials": KindAnchors(
        folded=(rb"cl(?:oudant|ou|)(?:_|-|)(?:api|)(?:key|pw|pass|token)", rb"cloudant")
    ),
    # [MNO][a-zA-Z\d_-]{23,25}\.[a-zA-Z\d_-]{6}\.[a-zA-Z\d_-]{27}
    "Discord Bot Token": KindAnchors(
        cased=(rb"\.[a-zA-Z0-9_\x80-\xff-]{6,24}\.[a-zA-Z0-9_\x80-\xff-]{27}",)
    ),
    "GitHub Token": KindAnchors(cased=(rb"gh[pousr]_",)),
    "GitLab Token": KindAnchors(
        cased=(rb"gl(?:pat|dt|ft|soat|rt|cbt|imt|ptt|agent|oas)-", rb"GR1348941")
    ),
    # ...(?:key|pwd|password|pass|token)(?:"|\'|)... ignoring case (the name before is optional)
    "IBM Cloud IAM Key": KindAnchors(folded=(rb"key", rb"pwd", rb"pass", rb"token")),
    # ...(?:secret[-_]?(?:access)?[-_]?key)... ignoring case
    "IBM COS HMAC Credentials": KindAnchors(folded=(rb"secret",)),
    "JSON Web Token": KindAnchors(cased=(rb"eyJ",)),
    # the keyword plugin's words (keyword.DENYLIST), each holding one of these, ignoring case:
    # api_?key...client_?key, db_?pass, database_?pass, key_?pass, password, passwd, pwd,
    # secret, contraseña, contrasena
    "Secret Keyword": KindAnchors(
        folded=(rb"key", rb"pass", rb"pwd", rb"secret", rb"contrase"),
    ),
    "Mailchimp Access Key": KindAnchors(cased=(rb"-us[0-9]",)),
    "NPM tokens": KindAnchors(cased=(rb"/:_authToken=",)),
    "OpenAI Token": KindAnchors(cased=(rb"T3BlbkFJ",)),
    # BEGIN ... PRIVATE KEY (seven of them), PuTTY-User-Key-File-2
    "Private Key": KindAnchors(cased=(rb"P(?:RIVATE KEY|uTTY-User-Key-File-2)",)),
    "PyPI Token": KindAnchors(cased=(rb"pypi-AgE",)),
    "SendGrid API Key": KindAnchors(cased=(rb"SG\.",)),
    # xox(?:a|b|p|o|s|r)-... and https://hooks\.slack\.com/..., both ignoring case
    "Slack Token": KindAnchors(folded=(rb"xox", rb"hooks\.slack\.com")),
    # (?:softlayer|sl)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|password|pass|token)...;
    # (?:http|https)://api.softlayer.com/...; both ignoring case
    "SoftLayer Credentials": KindAnchors(
        folded=(rb"s(?:oftlayer|l)(?:_|-|)(?:api|)(?:_|-|)(?:key|pwd|pass|token)", rb"softlayer")
    ),
    "Square OAuth Secret": KindAnchors(cased=(rb"sq0csp-",)),
    "Stripe Access Key": KindAnchors(cased=(rb"k_live_",)),
    # \d{8,10}:[0-9A-Za-z_-]{35}
    "Telegram Bot Token": KindAnchors(cased=(rb":[0-9A-Za-z_-]{35}",)),
    "Twilio API Key": KindAnchors(cased=(rb"AC[a-z0-9]{32}", rb"SK[a-z0-9]{32}")),
    # ~/.pgpass: host:port:db:user:password, the port \d+ or *
    "PostgreSQL Password File Line": KindAnchors(cased=(rb":(?:[0-9\x80-\xff]+|\*):",)),
    # ~/.netrc: ...password <p>, ignoring case
    "Netrc Password": KindAnchors(folded=(rb"pass",)),
}

ODD_CASE: tuple[bytes, ...] = tuple(
    letter.encode() for letter in ("\u212a", "\u017f", "\u0131", "\u0130")
)
"""The non-ASCII letters ``IGNORECASE`` matches an ASCII letter with (a test derives them)."""

_NO_LINE_BREAK = re.compile(rb"(?<!\\)\.|\\[sSWDB]|\[\^")


@dataclass(frozen=True)
class _Group:
    """Anchors that start with the same literal byte, searched as one pattern; on a line it
    matches, each member is tried on that line alone (one member's match may hide another's)."""

    pattern: re.Pattern[bytes]
    members: tuple[tuple[re.Pattern[bytes], frozenset[str]], ...]


class Sweep:
    """Every kind's anchors, each distinct pattern compiled once, those starting with the same
    literal byte searched together (module doc)."""

    def __init__(self, kinds: Mapping[str, KindAnchors]) -> None:
        cased: dict[bytes, set[str]] = {}
        folded: dict[bytes, set[str]] = {}
        for kind, anchors in kinds.items():
            if not anchors.cased and not anchors.folded:
                raise ValueError(f"secret anchors: kind {kind!r} has none")
            for pattern in anchors.cased:
                cased.setdefault(_checked(kind, pattern), set()).add(kind)
            for pattern in anchors.folded:
                if pattern != pattern.lower():
                    raise ValueError(f"secret anchors: {kind!r}'s folded {pattern!r} is not lower")
                folded.setdefault(_checked(kind, pattern), set()).add(kind)
        self._cased = _groups(cased)
        self._folded = _groups(folded)
        self._folded_kinds = frozenset(kind for kinds_of in folded.values() for kind in kinds_of)

    @property
    def searches(self) -> int:
        """How many patterns a batch is searched with."""
        return len(self._cased) + len(self._folded)

    def lines(self, block: bytes) -> dict[int, set[str]]:
        """For each line of ``block`` an anchor matches (the offset of its start), the kinds
        whose anchors match there."""
        found: dict[int, set[str]] = {}
        _search(block, block, self._cased, found)
        if self._folded:
            _search(block.lower(), block, self._folded, found)
            if not block.isascii():
                for odd in ODD_CASE:
                    at = block.find(odd)
                    while at >= 0:
                        start = block.rfind(b"\n", 0, at) + 1
                        found.setdefault(start, set()).update(self._folded_kinds)
                        at = block.find(odd, at + len(odd))
        return found


def _checked(kind: str, pattern: bytes) -> bytes:
    if _NO_LINE_BREAK.search(pattern):
        raise ValueError(f"secret anchors: {kind!r}'s {pattern!r} could match a line break")
    re.compile(pattern)
    return pattern


_META = frozenset(b".^$*+?{}[]|()\\")


def _lead(pattern: bytes) -> tuple[bytes, int] | None:
    """The literal byte ``pattern`` starts with and the length of its source (``\\.``: 2),
    or None where it starts otherwise, or has an alternative at its top level."""
    if pattern[:1] == b"\\" and len(pattern) > 1 and not chr(pattern[1]).isalnum():
        lead, size = pattern[1:2], 2
    elif pattern and pattern[0] not in _META:
        lead, size = pattern[:1], 1
    else:
        return None
    if pattern[size : size + 1] in (b"*", b"+", b"?", b"{"):
        return None
    depth, escaped, in_class = 0, False, False
    for byte in pattern:
        if escaped:
            escaped = False
        elif byte == 0x5C:  # backslash
            escaped = True
        elif in_class:
            in_class = byte != 0x5D  # ]
        elif byte == 0x5B:  # [
            in_class = True
        elif byte == 0x28:  # (
            depth += 1
        elif byte == 0x29:  # )
            depth -= 1
        elif byte == 0x7C and depth == 0:  # |
            return None
    return lead, size


def _groups(anchors: dict[bytes, set[str]]) -> tuple[_Group, ...]:
    """``anchors`` (pattern: its kinds) grouped by the literal byte each starts with."""
    by_lead: dict[bytes, list[tuple[bytes, int]]] = {}
    for pattern in anchors:
        lead = _lead(pattern)
        key, size = (lead[0], lead[1]) if lead is not None else (pattern, len(pattern))
        by_lead.setdefault(key if lead is not None else b"\0" + pattern, []).append((pattern, size))
    groups: list[_Group] = []
    for key, patterns in by_lead.items():
        members = tuple((re.compile(p), frozenset(anchors[p])) for p, _size in patterns)
        if len(patterns) == 1:
            groups.append(_Group(members[0][0], members))
            continue
        rests = b"|".join(p[size:] for p, size in patterns)
        groups.append(_Group(re.compile(re.escape(key) + b"(?:" + rests + b")"), members))
    return tuple(groups)


def _search(
    text: bytes, block: bytes, groups: tuple[_Group, ...], found: dict[int, set[str]]
) -> None:
    """Each line of ``text`` (``block`` or the same bytes lowered) a group matches: the kinds
    of its members that match the line added to ``found``; a line with a match is left at
    once for the next line."""
    for group in groups:
        search = group.pattern.search
        single = group.members[0][1] if len(group.members) == 1 else None
        match = search(text)
        while match is not None:
            start = block.rfind(b"\n", 0, match.start()) + 1
            end = block.find(b"\n", match.end())
            kinds = found.setdefault(start, set())
            if single is not None:
                kinds.update(single)
            else:
                line = text[start : len(text) if end < 0 else end]
                for member, of in group.members:
                    if member.search(line):
                        kinds.update(of)
            if end < 0:
                break
            match = search(text, end + 1)
