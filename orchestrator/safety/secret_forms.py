"""The forms a secret takes in bytes a CLI wrote: as is, and in the common encodings.

A CLI that writes its key into a file may have encoded it first: a ``.env`` in a docker
config is base64, a URL carries it percent-encoded, a dump of bytes is hex. ``forms(value)``
gives the byte strings to look for, each labelled with its encoding:

- ``plain``: the UTF-8 bytes;
- ``url``: percent-encoded (``quote``, ``quote_plus``; upper- and lower-case hex digits),
  when that differs from the plain form;
- ``json``: as a JSON string holds it (``json.dumps``: quotes, backslashes, control and
  non-ASCII characters escaped, ``/`` as written and as ``\\/``), when that differs;
- ``hex``: lower- and upper-case;
- ``base64`` and ``base64url``: in each of the 3 alignments the value can start at inside
  the encoded data (its offset modulo 3), only the characters that the value's own bytes
  decide (the first group, which holds bytes before it, and the last, which holds bytes
  after it, are left out). A value shorter than ``_MIN_BASE64`` bytes has no base64 forms
  at some alignment: too few characters would be found by chance in any base64 text.

Every form is looked for with whitespace inserted anywhere in it (``secret_stream``: the
search runs on the bytes with their whitespace taken out): a token a terminal wrapped over
two lines, base64 wrapped at any width (``base64 -w 12``, MIME's 76 characters). Other
encodings (compression, encryption, a reversed string) are not looked for: no scan can find
a secret a CLI set out to hide.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from urllib.parse import quote, quote_plus

__all__ = ["Form", "forms"]

_MIN_BASE64 = 8  # characters: 48 bits of the value, not found by chance


@dataclass(frozen=True)
class Form:
    needle: bytes  # what to look for
    encoding: str  # "plain", "url", "json", "hex", "base64" or "base64url"


def forms(value: str) -> list[Form]:
    """Every form of ``value`` to look for, plain first, each needle once."""
    raw = value.encode("utf-8")
    found: dict[bytes, str] = {raw: "plain"}
    for encoded in (quote(value, safe=""), quote_plus(value, safe="")):
        data = encoded.encode("ascii")
        found.setdefault(data, "url")
        found.setdefault(_lower_escapes(data), "url")
    escaped = json.dumps(value)[1:-1]
    for written in (escaped, escaped.replace("/", "\\/")):
        found.setdefault(written.encode("ascii"), "json")
    found.setdefault(raw.hex().encode(), "hex")
    found.setdefault(raw.hex().upper().encode(), "hex")
    for core in _base64_cores(raw):
        found.setdefault(core, "base64")
        found.setdefault(core.translate(_URLSAFE), "base64url")
    return [Form(needle, encoding) for needle, encoding in found.items()]


_URLSAFE = bytes.maketrans(b"+/", b"-_")


def _base64_cores(raw: bytes) -> list[bytes]:
    """The base64 characters decided by ``raw`` alone, for each of its 3 alignments."""
    cores = []
    for shift in range(3):
        encoded = base64.b64encode(bytes(shift) + raw)
        start = 4 if shift else 0  # the first group holds ``shift`` bytes that are not ours
        end = 4 * ((shift + len(raw)) // 3)  # the last full group: the rest holds bytes after
        core = encoded[start:end]
        if len(core) >= _MIN_BASE64:
            cores.append(core)
    return cores


def _lower_escapes(data: bytes) -> bytes:
    """``%2F`` as ``%2f``: both are valid percent-encoding."""
    parts = data.split(b"%")
    return parts[0] + b"".join(b"%" + part[:2].lower() + part[2:] for part in parts[1:])
