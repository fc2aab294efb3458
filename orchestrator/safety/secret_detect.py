"""Credentials nobody declared, found by their form in lines held in memory.

``secret_mask`` knows the values the run was told about; a credential it never saw (a
``~/.pgpass`` line, a vault token, an AWS key a script printed and a CLI committed) is found
here by its form. ``Detector.lines(path, numbered)`` looks at lines (the lines a branch adds,
``merge.secret_added``; the text of a post, ``forge.public_text``) with:

- **Yelp's detect-secrets** (1.5), used as a library: its plugins are built here with their
  parameters and called on each line (``analyze_string``; the keyword plugin with the
  patterns of the file's type). No settings file, no baseline is read, and its verification
  (a request to the vendor's API with the value) never runs: the plugins' ``analyze_line``
  calls it when a global setting asks, so it is not called. Its regex plugins are all taken
  (AWS, Azure storage, basic auth in URLs, Artifactory, Cloudant, Discord, GitHub, GitLab, IBM,
  JWT, Mailchimp, npm, OpenAI, private keys, PyPI, SendGrid, Slack, SoftLayer, Square, Stripe,
  Telegram, Twilio) and its keyword plugin (a secret-named name given a quoted value), with
  its heuristic filters (sequential strings, UUIDs, ids, templates, ``$VAR``, indirect
  references, values that are not alphanumeric). Left out: the two high-entropy plugins (on
  this repository's own tree they flag 43 strings, none a credential: hashes, test data,
  ids; a landing they block fails for good, and the keyword plugin already takes a long
  random value given to a secret-named name) and the public IPv4 one (an address is no
  credential);
- **our own shapes** (``secret_shapes``) where detect-secrets has no plugin: HashiCorp Vault
  tokens (``hvs.``...; not the legacy ``s.`` + 24, too like a member access in code),
  GitHub fine-grained tokens, Anthropic keys, Google API keys, crates.io, Terraform Cloud,
  Docker Hub and Hugging Face tokens, a ``~/.pgpass`` line, a ``~/.netrc`` password (alone on
  its line only in a file named ``*netrc``).

A line carrying detect-secrets' ``pragma: allowlist secret`` comment (or under one with
``pragma: allowlist nextline secret``: the line just above in the file, where it is known) is
not looked at, and each ``AllowRule`` of the run's ``secrets.allow`` (``allow``, read at each
check through ``allowed()``) lets hits through by path glob and kind, or by the value's
fingerprint (its SHA-256).

A ``Hit`` names the path, the line and the kind, and the value's fingerprint; never the value:
not in its fields, its repr, a message or a log.

What it costs is the prefilter's (``bench/secret_detect_bench.py``): a rule looks at a line
only where its kind's anchor is (``safety.secret_anchors``: a literal every match of its
regexes holds, each searched once over the whole batch's bytes at C speed) and where it
passes the rule's gate, a pattern cheaper than the rule's own that each line it can hit
matches: for the keyword plugin, its patterns for the file's type with the value taken as any
text and the denylist word as the literal it holds (``_keyword_gate``), for the IBM plugins
their value. Only then is the line decoded and the plugin run on it, and the pragma checked
where it found something. detect-secrets itself (with ``requests``, which it imports) is
imported and its plugins made at the first line an anchor matches (``_built``), not with this
module: most landings add no such line. ``Detector.runs`` takes a diff's added lines as git
wrote them (``merge.secret_added``); ``Detector.lines`` text lines.
``tests/safety/test_secret_anchors.py`` checks that anchors and gates keep every line each
rule finds something on.
"""

from __future__ import annotations

import bisect
import functools
import hashlib
import re
import threading
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any

from orchestrator.safety import secret_shapes
from orchestrator.safety.secret_allow import AllowRule, allow, allowed
from orchestrator.safety.secret_anchors import ANCHORS, KindAnchors, Sweep

if TYPE_CHECKING:
    from detect_secrets.plugins.base import BasePlugin

__all__ = [
    "KINDS",
    "AllowRule",
    "Detector",
    "Hit",
    "Run",
    "allow",
    "allowed",
    "fingerprint",
]


def _plugins() -> tuple[BasePlugin, ...]:
    """detect-secrets' plugins taken (module doc), imported and made on first use (``_built``):
    the library (and ``requests``, which it imports) costs a run's start-up more than a batch
    of lines no anchor matches, most of a landing's, ever needs."""
    from detect_secrets.plugins import keyword
    from detect_secrets.plugins.artifactory import ArtifactoryDetector
    from detect_secrets.plugins.aws import AWSKeyDetector
    from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
    from detect_secrets.plugins.basic_auth import BasicAuthDetector
    from detect_secrets.plugins.cloudant import CloudantDetector
    from detect_secrets.plugins.discord import DiscordBotTokenDetector
    from detect_secrets.plugins.github_token import GitHubTokenDetector
    from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
    from detect_secrets.plugins.ibm_cloud_iam import IbmCloudIamDetector
    from detect_secrets.plugins.ibm_cos_hmac import IbmCosHmacDetector
    from detect_secrets.plugins.jwt import JwtTokenDetector
    from detect_secrets.plugins.mailchimp import MailchimpDetector
    from detect_secrets.plugins.npm import NpmDetector
    from detect_secrets.plugins.openai import OpenAIDetector
    from detect_secrets.plugins.private_key import PrivateKeyDetector
    from detect_secrets.plugins.pypi_token import PypiTokenDetector
    from detect_secrets.plugins.sendgrid import SendGridDetector
    from detect_secrets.plugins.slack import SlackDetector
    from detect_secrets.plugins.softlayer import SoftlayerDetector
    from detect_secrets.plugins.square_oauth import SquareOAuthDetector
    from detect_secrets.plugins.stripe import StripeDetector
    from detect_secrets.plugins.telegram_token import TelegramBotTokenDetector
    from detect_secrets.plugins.twilio import TwilioKeyDetector

    return (
        ArtifactoryDetector(),
        AWSKeyDetector(),
        AzureStorageKeyDetector(),
        BasicAuthDetector(),
        CloudantDetector(),
        DiscordBotTokenDetector(),
        GitHubTokenDetector(),
        GitLabTokenDetector(),
        IbmCloudIamDetector(),
        IbmCosHmacDetector(),
        JwtTokenDetector(),
        keyword.KeywordDetector(),
        MailchimpDetector(),
        NpmDetector(),
        OpenAIDetector(),
        PrivateKeyDetector(),
        PypiTokenDetector(),
        SendGridDetector(),
        SlackDetector(),
        SoftlayerDetector(),
        SquareOAuthDetector(),
        StripeDetector(),
        TelegramBotTokenDetector(),
        TwilioKeyDetector(),
    )


# Our shapes detect-secrets has no plugin for (module doc).
_OWN_TOKENS = frozenset(
    {
        "Vault Token",
        "GitHub Fine-grained Token",
        "Anthropic or OpenAI Key",
        "Google API Key",
        "crates.io Token",
        "Terraform Cloud Token",
        "Docker Hub Token",
        "Hugging Face Token",
    }
)
PGPASS = "PostgreSQL Password File Line"
NETRC = "Netrc Password"

KINDS: frozenset[str]  # made on first use (``__getattr__``)
"""Every kind a hit may name (``config.secrets.SECRET_KINDS``, which ``secrets.allow``'s
``kind`` is checked against, holds the same)."""


def __getattr__(name: str) -> Any:
    if name == "KINDS":
        plugins = {rule.kind for rule in _built().rules if rule.plugin is not None}
        kinds = frozenset(plugins | _OWN_TOKENS | {PGPASS, NETRC})
        globals()["KINDS"] = kinds
        return kinds
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def fingerprint(value: str) -> str:
    """The SHA-256 (hex) of a credential's value: how an allow rule names one value."""
    return hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


@dataclass(frozen=True)
class Hit:
    """A credential found: where and which kind; the value only as its fingerprint."""

    path: str
    line: int
    kind: str
    fingerprint: str

    def describe(self) -> str:
        return f"{self.path} line {self.line}: {self.kind} (fingerprint {self.fingerprint})"


@dataclass(frozen=True)
class Run:
    """Lines a file holds one after the other: the number of the first, their UTF-8 bytes
    joined by ``\\n`` (no final one), and the line just above the first when it is known."""

    first: int
    text: bytes
    before: bytes = b""


@dataclass(frozen=True)
class _Rule:
    """One way to find a kind: its plugin (or our pattern, ``own``), and ``gate``, a pattern
    cheaper than the plugin's that every line it can hit matches (the value it needs)."""

    kind: str
    plugin: BasePlugin | None
    gate: re.Pattern[str] | None = None
    own: re.Pattern[str] | None = None


# The value the IBM plugins need after their names (``[a-zA-Z0-9_\-]{44}``, ``[a-f0-9]{48}``,
# ignoring case).
_GATES = {
    "IBM Cloud IAM Key": re.compile(r"(?i)[a-z0-9_-]{44}"),
    "IBM COS HMAC Credentials": re.compile(r"(?i)[a-f0-9]{48}"),
}


def _rules() -> tuple[_Rule, ...]:
    made: list[_Rule] = []
    for plugin in _plugins():
        kind = str(plugin.secret_type)
        made.append(_Rule(kind, plugin, _GATES.get(kind)))
    for kind, _needles, token in secret_shapes.TOKEN_SHAPES:
        if kind in _OWN_TOKENS:
            made.append(_Rule(kind, None, None, token))
    made.append(_Rule(PGPASS, None, None, secret_shapes.PGPASS_LINE))
    made.append(_Rule(NETRC, None, None, secret_shapes.NETRC_PASSWORD))
    return tuple(made)


@dataclass(frozen=True)
class _KeywordGate:
    """What a line needs before the keyword plugin's patterns for its file type can match:
    ``lowered`` for an ASCII line lowered, ``folded`` (ignoring case) for any other."""

    lowered: re.Pattern[str]
    folded: re.Pattern[str]

    def passes(self, line: str) -> bool:
        if line.isascii():
            return self.lowered.search(line.lower()) is not None
        return self.folded.search(line) is not None


_BACKREF = re.compile(r"\(\\[0-9]\)")  # ``(\3)`` in a pattern's text
_LEADING = re.compile(r"^(?:\['\"`\]\?)?(?:\\s\*)?")  # ``['"`]?\s*`` first


def _keyword_gate(regexes: Iterable[re.Pattern[str]]) -> _KeywordGate:
    """Each of the keyword plugin's ``regexes`` made a pattern every line it matches matches:
    its denylist word as the literal the word holds (``secret_anchors``: ``api_?key`` holds
    ``key``...) among word characters, its value (``keyword.SECRET``) as any text, a
    back-reference to a quote as an optional quote; the part before the value where it names
    the word, else the part after (``"x" == password``). A regex of another form is refused."""
    from detect_secrets.plugins import keyword

    words = "|".join(w.decode() for w in ANCHORS[_built().keyword].folded)
    lead = rf"(?:{words})\w*"
    after_word: list[str] = []  # what follows the word, in each regex naming it first
    others: list[str] = []
    for regex in regexes:
        head, secret, tail = regex.pattern.partition(f"({keyword.SECRET})")
        tail = _BACKREF.sub(lambda _m: "['\"`]?", tail)
        if secret and head.startswith(keyword.DENYLIST_REGEX):
            body = f"{head}.*{tail}"
        elif secret and keyword.DENYLIST_REGEX in tail:
            body = _LEADING.sub("", tail)
        else:
            raise ValueError(f"secret_detect: a keyword pattern of an unknown form: {regex!r}")
        body = body.replace(keyword.DENYLIST_REGEX, lead)
        if "|".join(keyword.DENYLIST) in body:
            raise ValueError(f"secret_detect: a keyword pattern of an unknown form: {regex!r}")
        if body.startswith(lead):
            after_word.append(f"(?:{body[len(lead) :]})")
        else:
            others.append(f"(?:{body})")
    alternatives = "|".join(([f"{lead}(?:{'|'.join(after_word)})"] if after_word else []) + others)
    return _KeywordGate(re.compile(alternatives), re.compile(alternatives, re.IGNORECASE))


_KEYWORD_GATES: dict[int, _KeywordGate] = {}
_KEYWORD_GATES_LOCK = threading.Lock()


def _keyword_gate_for(by_type: dict[re.Pattern[str], int]) -> _KeywordGate:
    with _KEYWORD_GATES_LOCK:
        gate = _KEYWORD_GATES.get(id(by_type))
        if gate is None:
            gate = _KEYWORD_GATES[id(by_type)] = _keyword_gate(by_type)
        return gate


def _anchors() -> dict[str, KindAnchors]:
    """Each rule's anchors: detect-secrets' kinds and our line shapes from ``secret_anchors``,
    our tokens from the literals one of which each needs (``secret_shapes.TOKEN_SHAPES``).
    A rule with none is refused when the rules are made (``_built``)."""
    made = {kind: ANCHORS[kind] for kind in ANCHORS}
    for kind, needles, _token in secret_shapes.TOKEN_SHAPES:
        if kind in _OWN_TOKENS:
            made[kind] = KindAnchors(cased=tuple(re.escape(n).encode() for n in needles))
    return made


_ANCHORS = _anchors()
_SWEEP = Sweep(_ANCHORS)


@dataclass(frozen=True)
class _Built:
    """The rules (``by_kind`` and ``order``: by their kind, and their order) and the keyword
    plugin's kind, made with detect-secrets' plugins when first needed: at the first line an
    anchor matches (``_built``)."""

    rules: tuple[_Rule, ...]
    by_kind: dict[str, _Rule]
    order: dict[str, int]
    keyword: str


@functools.cache  # (two threads at once may both build it: the same rules, one kept)
def _built() -> _Built:
    from detect_secrets.plugins import keyword

    rules = _rules()
    missing = {rule.kind for rule in rules} - _ANCHORS.keys()
    if missing:
        raise ValueError(f"secret_detect: no anchors for {sorted(missing)} (secret_anchors)")
    return _Built(
        rules,
        {rule.kind: rule for rule in rules},
        {rule.kind: n for n, rule in enumerate(rules)},
        str(keyword.KeywordDetector.secret_type),
    )


def _filtered(value: str, line: str, plugin: BasePlugin) -> bool:
    """detect-secrets' heuristic filters: a value that is no credential."""
    from detect_secrets.filters import heuristic

    return bool(
        heuristic.is_sequential_string(value)
        or heuristic.is_potential_uuid(value)
        or heuristic.is_likely_id_string(value, line, plugin)
        or heuristic.is_templated_secret(value)
        or heuristic.is_prefixed_with_dollar_sign(value)
        or heuristic.is_indirect_reference(line)
        or heuristic.is_not_alphanumeric_string(value)
    )


# A candidate line: its number, its text and the line above (both without trailing blanks),
# the kinds whose anchors it matches.
_Candidate = tuple[int, str, str, set[str]]


class Detector:
    """Finds credentials in lines (module doc). ``allow``: the rules hits pass by; None reads
    the run's (``allowed()``) at each call."""

    def __init__(self, allow: Sequence[AllowRule] | None = None) -> None:
        self._allow = None if allow is None else tuple(allow)

    def lines(self, path: str, numbered: Sequence[tuple[int, str]]) -> list[Hit]:
        """The hits in ``numbered`` (line number, text) of ``path``, allowed ones left out."""
        if not numbered:
            return []
        texts = [text.rstrip() for _n, text in numbered]
        joined = "\n".join(texts)
        if joined.count("\n") != len(texts) - 1:  # a line holding a line break
            joined = "\n".join(text.replace("\n", " ") for text in texts)
        block = joined.encode("utf-8", "surrogatepass")
        found = _SWEEP.lines(block)
        candidates: list[_Candidate] = []
        for index, start in _indexed(block, found):
            before = texts[index - 1] if index else ""
            candidates.append((numbered[index][0], texts[index], before, found[start]))
        return self._look(path, candidates)

    def runs(self, path: str, runs: Sequence[Run]) -> list[Hit]:
        """The hits in ``runs`` of ``path`` (a diff's added lines as git wrote them, decoded
        only where an anchor matches), allowed ones left out."""
        if not runs:
            return []
        block = b"\n".join(run.text for run in runs)
        found = _SWEEP.lines(block)
        if not found:
            return []
        firsts: list[int] = []  # the index in ``block`` of each run's first line
        count = 0
        for run in runs:
            firsts.append(count)
            count += run.text.count(b"\n") + 1
        candidates: list[_Candidate] = []
        for index, start in _indexed(block, found):
            which = bisect.bisect_right(firsts, index) - 1
            run = runs[which]
            end = block.find(b"\n", start)
            line = block[start : len(block) if end < 0 else end]
            if index > firsts[which]:
                before = block[block.rfind(b"\n", 0, start - 1) + 1 : start - 1]
            else:
                before = run.before
            number = run.first + index - firsts[which]
            candidates.append((number, _decoded(line), _decoded(before), found[start]))
        return self._look(path, candidates)

    def text(self, where: str, text: str) -> list[Hit]:
        """The hits in ``text`` (a post), each named ``where`` at its line."""
        return self.lines(where, list(enumerate(text.splitlines(), start=1)))

    def _look(self, path: str, candidates: list[_Candidate]) -> list[Hit]:
        """Each candidate line looked at by the rules of its kinds; a line's hits left out
        where the pragma or an allow rule lets them through."""
        if not candidates:
            return []
        from detect_secrets.filters.allowlist import is_line_allowlisted
        from detect_secrets.plugins import keyword
        from detect_secrets.util.code_snippet import get_code_snippet
        from detect_secrets.util.filetype import determine_file_type

        rules = self._allow if self._allow is not None else allowed()
        netrc = PurePosixPath(path).name.lower().endswith("netrc")
        filetype = determine_file_type(path)
        by_type = keyword.REGEX_BY_FILETYPE.get(
            filetype, keyword.QUOTES_REQUIRED_DENYLIST_REGEX_TO_GROUP
        )
        words = _keyword_gate_for(by_type)
        hits: dict[tuple[int, str, str], Hit] = {}
        for number, line, before, kinds in candidates:
            found = [
                (rule.kind, value)
                for rule in _gated(kinds, line, words)
                for value in _values(rule, line, by_type, netrc)
            ]
            if not found:
                continue
            context = get_code_snippet([before, line], 2, lines_of_context=1)
            if is_line_allowlisted(path, line, context):
                continue
            for kind, value in found:
                hit = Hit(path, number, kind, fingerprint(value))
                if not any(allowing.allows(path, kind, hit.fingerprint) for allowing in rules):
                    hits.setdefault((number, kind, hit.fingerprint), hit)
        return list(hits.values())


def _gated(kinds: set[str], line: str, words: _KeywordGate) -> Iterator[_Rule]:
    """The rules of ``kinds`` (a line's anchors) whose gates ``line`` passes, in order."""
    built = _built()
    for kind in sorted(kinds, key=built.order.__getitem__):
        rule = built.by_kind[kind]
        if rule.gate is not None and rule.gate.search(line) is None:
            continue
        if kind == built.keyword and not words.passes(line):
            continue
        yield rule


def _indexed(block: bytes, found: dict[int, set[str]]) -> Iterator[tuple[int, int]]:
    """Each line start in ``found``, in order, with the line's index in ``block``."""
    index, at = 0, 0
    for start in sorted(found):
        index += block.count(b"\n", at, start)
        at = start
        yield index, start


def _decoded(line: bytes) -> str:
    return line.decode("utf-8", "replace").rstrip()


def _values(
    rule: _Rule, line: str, by_type: dict[re.Pattern[str], int], netrc: bool
) -> Iterator[str]:
    """The credential values ``rule`` finds in ``line``."""
    plugin = rule.plugin
    if plugin is not None:
        from detect_secrets.plugins import keyword

        if isinstance(plugin, keyword.KeywordDetector):
            found: Iterable[str] = plugin.analyze_string(line, denylist_regex_to_group=by_type)
        else:
            found = plugin.analyze_string(line)
        for value in found:
            if value and not _filtered(value, line, plugin):
                yield value
        return
    assert rule.own is not None
    for match in rule.own.finditer(line):
        groups = match.groupdict()
        if "secret" not in groups:
            yield match.group(0)
            continue
        secret: str | None = groups.get("secret")
        if secret is None and netrc:
            secret = groups.get("alone")
        if secret and not secret_shapes.is_placeholder(secret):
            yield secret
