"""Credentials by their shape: masking secrets nobody told the run about.

``secret_mask`` hides the values the run knows (its environment's keys, what it handed a
child). Output of code a CLI wrote (a verify or setup command) may carry others: whatever that
code could read and print. Where such output is stored, shown or posted, ``masked`` replaces
every credential it recognizes by its form with ``***`` (``redaction.MASK``), keeping what
says which one it was (the name of an assignment, a token's vendor prefix is dropped with it):

- **vendor tokens** by their documented prefixes: AWS access key ids (``AKIA``/``ASIA``...),
  HashiCorp Vault tokens (``hvs.``/``hvb.``/``hvr.``, the legacy ``s.`` + 24), GitHub
  (``ghp_``, ``gho_``, ``ghu_``, ``ghs_``, ``ghr_``, ``github_pat_``), GitLab (``glpat-``),
  Slack (``xox?-``), Stripe (``sk_live_``...), OpenAI and Anthropic (``sk-``, ``sk-ant-``),
  Google API keys (``AIza``), npm (``npm_``), PyPI (``pypi-AgEIcHlwaS5vcmc``), crates.io
  (``cio``), Terraform Cloud (``.atlasv1.``), Docker Hub (``dckr_pat_``), Hugging Face
  (``hf_``);
- **private key blocks** (``-----BEGIN ... PRIVATE KEY-----`` to its ``END`` line, or to the
  end of the text when the output was cut inside it; an ``END`` line whose ``BEGIN`` was cut
  off takes the key lines above it);
- **JSON Web Tokens** (``eyJ...`` ``.`` ``eyJ...`` ``.`` signature);
- **lines of login files**: a ``~/.pgpass`` line (``host:port:db:user:password``, the last
  field), a ``~/.netrc`` ``password``;
- **credentials in URLs** (``scheme://user:password@host``, the password) and HTTP
  ``Authorization`` values;
- **assignments of a secret-named key** (``password=``, ``DB_PASSWORD: ...``,
  ``"token": "..."``, ``aws_secret_access_key = ...``, ``pass = ...``, ``apiKey: ...``,
  ``--password=...``): the value. The name must be the key word itself or joined to it by
  ``_``, ``-`` or ``.`` (or camelCase), so ``GIT_AUTHOR_NAME`` or ``passthrough`` are not
  taken for one; ``true``, ``false``, ``null``, a ``${VAR}`` reference and a value already
  masked are left as they are.

This errs towards masking: a test's output that prints ``token = make_token()`` reads
``token = ***``. It is meant for what code the orchestrator did not write prints, not for the
orchestrator's own records, whose known secrets ``secret_mask`` hides exactly.
"""

from __future__ import annotations

import re

from orchestrator.safety.redaction import MASK

__all__ = [
    "NETRC_PASSWORD",
    "PGPASS_LINE",
    "TOKEN_SHAPES",
    "is_placeholder",
    "masked",
    "shapes_found",
]

# Each with the literals one of which it needs (a search for them is cheap; a pattern tried at
# every position of a long output is not).
_VENDOR_TOKENS = (
    (
        "AWS Access Key",
        ("AKIA", "ASIA", "ABIA", "ACCA", "A3T"),
        r"\b(?:AKIA|ASIA|ABIA|ACCA|A3T[A-Z0-9])[A-Z0-9]{16}\b",
    ),
    ("Vault Token", ("hvs.", "hvb.", "hvr."), r"\bhv[sbr]\.[A-Za-z0-9_-]{20,}"),
    # Vault's legacy service token
    ("Vault Legacy Token", ("s.",), r"(?<![A-Za-z0-9_.])s\.[A-Za-z0-9]{24}\b"),
    (
        "GitHub Token",
        ("ghp_", "gho_", "ghu_", "ghs_", "ghr_"),
        r"\bgh[pousr]_[A-Za-z0-9]{30,255}\b",
    ),
    ("GitHub Fine-grained Token", ("github_pat_",), r"\bgithub_pat_[A-Za-z0-9_]{22,255}"),
    ("GitLab Token", ("glpat-",), r"\bglpat-[A-Za-z0-9_-]{20,}"),
    ("Slack Token", ("xox",), r"\bxox[abposr]-[A-Za-z0-9-]{10,}"),
    ("Stripe Access Key", ("k_live_", "k_test_"), r"\b[rs]k_(?:live|test)_[A-Za-z0-9]{16,}"),
    ("Anthropic or OpenAI Key", ("sk-",), r"\bsk-(?:ant-|proj-)?[A-Za-z0-9_-]{20,}"),
    ("Google API Key", ("AIza",), r"\bAIza[0-9A-Za-z_-]{35}"),
    ("NPM tokens", ("npm_",), r"\bnpm_[A-Za-z0-9]{36}\b"),
    ("PyPI Token", ("pypi-",), r"\bpypi-AgEIcHlwaS5vcmc[A-Za-z0-9_-]{20,}"),
    ("crates.io Token", ("cio",), r"\bcio[A-Za-z0-9]{32}\b"),
    ("Terraform Cloud Token", (".atlasv1.",), r"\b[A-Za-z0-9]{14}\.atlasv1\.[A-Za-z0-9_=-]{40,}"),
    ("Docker Hub Token", ("dckr_pat_",), r"\bdckr_pat_[A-Za-z0-9_-]{20,}"),
    ("Hugging Face Token", ("hf_",), r"\bhf_[A-Za-z0-9]{30,}\b"),
    ("JSON Web Token", ("eyJ",), r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*"),
)
TOKEN_SHAPES: tuple[tuple[str, tuple[str, ...], re.Pattern[str]], ...] = tuple(
    (kind, needles, re.compile(pattern)) for kind, needles, pattern in _VENDOR_TOKENS
)
"""Each vendor token's kind, the literals one of which it needs, its pattern
(``secret_detect`` takes those detect-secrets has no plugin for)."""
_TOKENS = tuple((needles, token) for _kind, needles, token in TOKEN_SHAPES)

# A private key: BEGIN to END, or BEGIN to the end (cut short), or the key lines above an END
# whose BEGIN was cut off (the output is a tail).
_KEY_BEGIN = r"-----BEGIN [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_KEY_END = r"-----END [A-Z0-9 ]*PRIVATE KEY(?: BLOCK)?-----"
_KEY_BLOCK = re.compile(rf"{_KEY_BEGIN}.*?(?:{_KEY_END}|\Z)", re.DOTALL)
_KEY_TAIL = re.compile(rf"(?:^[ \t]*[A-Za-z0-9+/=]{{16,}}[ \t]*\r?\n)+{_KEY_END}", re.MULTILINE)

# Values: what follows a secret-named key, up to a blank, a quote or a separator.
_VALUE = r"(?P<q>[\"']?)(?P<secret>[^\s\"'`,;:][^\s\"'`,;]{2,})"
_WORDS = (
    r"password|passwd|passphrase|pass|pwd|secret|token|api[_-]?key|apikey|access[_-]?key"
    r"|secret[_-]?key|private[_-]?key|client[_-]?secret|credentials?|auth"
)
_SNAKE = rf"(?i:(?:[A-Za-z0-9]+[_.-])*(?:{_WORDS})(?:[_.-][A-Za-z0-9]+)*)"
_CAMEL = r"[a-z][a-z0-9]*(?:[A-Z][a-z0-9]*)*(?:Password|Passwd|Secret|Token|Key|Auth|Credentials?)"
_ASSIGNED = re.compile(
    rf"(?<![A-Za-z0-9_/.-])(?:--?)?(?P<name>{_SNAKE}|{_CAMEL})[\"']?"
    rf"[ \t]*(?::|=|:=|=>)[ \t]*{_VALUE}"
)
_FLAG = re.compile(
    rf"(?i)(?<![A-Za-z0-9_-])--(?:password|passwd|token|secret|api-key)[ \t]+{_VALUE}"
)
_AUTHORIZATION = re.compile(
    r"(?i)\b(?:proxy-)?authorization[\"']?[ \t]*[:=][ \t]*[\"']?"
    r"(?:(?:bearer|basic|token|digest)[ \t]+)?(?P<secret>[^\s\"',;]{3,})"
)
_BEARER = re.compile(r"(?i)\b(?:bearer|basic)[ \t]+(?P<secret>[A-Za-z0-9._~+/=-]{12,})")
_URL = re.compile(r"\b[A-Za-z][A-Za-z0-9+.-]*://[^/\s:@]*:(?P<secret>[^/\s@]+)@")
# ~/.pgpass: hostname:port:database:username:password (``\:`` escapes a colon in a field).
_FIELD = r"(?:[^:\s\\]|\\.)+"
_PGPASS = re.compile(
    rf"^[ \t]*{_FIELD}:(?:\d+|\*):{_FIELD}:{_FIELD}:(?P<secret>(?:[^\s\\]|\\.)+)[ \t]*$",
    re.MULTILINE,
)
# ~/.netrc: ``machine h login u password p`` on one line, or ``password p`` on a line alone.
_NETRC = re.compile(
    r"(?im)(?:\b(?:machine|login|default)\b[^\n]*?\bpassword[ \t]+(?P<secret>\S+)"
    r"|^[ \t]*password[ \t]+(?P<alone>\S+)[ \t]*$)"
)

_LEFT_AS_IS = frozenset({"true", "false", "none", "null", "nil", "undefined", "yes", "no"})


def _value_only(match: re.Match[str]) -> str:
    """``match`` with its secret group masked (whichever of ``secret``/``alone`` took part)."""
    group = "secret" if match.group("secret") is not None else "alone"
    value = match.group(group)
    if _kept(value):
        return match.group(0)
    start, end = match.span(group)
    whole_start = match.start()
    text = match.group(0)
    return text[: start - whole_start] + MASK + text[end - whole_start :]


def _kept(value: str) -> bool:
    """A value that is no secret: a literal, a reference to one, or a mask already."""
    return (
        value.lower() in _LEFT_AS_IS
        or value.startswith(("$", "<", "%", "{"))
        or set(value) <= {"*", "x", "X", "."}
        or value.rstrip(":").isdigit()  # a port, a line number, a lifetime
    )


_KEYS = (_KEY_BLOCK, _KEY_TAIL)
# Each rule with the words (lower case) one of which it needs, or none: a search for them is
# cheap, a pattern tried at every position of a long output is not.
_RULES: tuple[tuple[re.Pattern[str], tuple[str, ...]], ...] = (
    (_URL, ("://",)),
    (_AUTHORIZATION, ("authorization",)),
    (_BEARER, ("bearer", "basic")),
    (_PGPASS, ()),
    (_NETRC, ("password",)),
    (_FLAG, ("--",)),
    (_ASSIGNED, ()),
)


def masked(text: str) -> str:
    """``text`` with every credential shape in it (see the module doc) replaced by ``***``."""
    if not text:
        return text
    if "PRIVATE KEY" in text:
        for key in _KEYS:
            text = key.sub(MASK, text)
    for needles, token in _TOKENS:
        if any(needle in text for needle in needles):
            text = token.sub(MASK, text)
    lower = text.lower()
    for pattern, words in _RULES:
        if not words or any(word in lower for word in words):
            text = pattern.sub(_value_only, text)
    return text


PGPASS_LINE = _PGPASS
"""A ``~/.pgpass`` line, its password in group ``secret``."""
NETRC_PASSWORD = _NETRC
"""A ``~/.netrc`` password: group ``secret`` after ``machine``/``login``/``default`` on its
line, or ``alone`` on a line of its own."""


def is_placeholder(value: str) -> bool:
    """A value that is no secret: ``true``, a ``${VAR}`` reference, a mask, a number."""
    return _kept(value)


def shapes_found(text: str) -> bool:
    """Whether ``text`` holds anything ``masked`` would hide."""
    return masked(text) != text
