"""The on-disk form of a state record: its JSON, then a checksum line.

::

    {"task_id":"add-login","version":3,...}
    {"sha256":"9f86d0..."}

The checksum covers the first line's bytes exactly, so truncation or a flipped byte anywhere in
the file is caught even when what is left still parses as JSON. Both lines are JSON, so
``jq -s '.[0]' FILE`` shows the record.
"""

from __future__ import annotations

import hashlib
import json

__all__ = ["RecordDamaged", "decode", "dumps", "encode"]

_PREFIX = b'{"sha256":"'
_SUFFIX = b'"}\n'


class RecordDamaged(ValueError):
    """The bytes are not an intact record; the message says what is wrong."""


def encode(body: bytes) -> bytes:
    """Frame one line of JSON (without newline) with its checksum."""
    digest = hashlib.sha256(body).hexdigest().encode()
    return body + b"\n" + _PREFIX + digest + _SUFFIX


def decode(raw: bytes) -> bytes:
    """Return the record's JSON line after checking its checksum, or raise RecordDamaged."""
    if not raw:
        raise RecordDamaged("file is empty")
    body, sep, trailer = raw[:-1].rpartition(b"\n")
    if not sep or not raw.endswith(b"\n"):
        raise RecordDamaged("checksum line missing (file truncated?)")
    if not (
        trailer.startswith(_PREFIX)
        and trailer.endswith(b'"}')
        and len(trailer) == len(_PREFIX) + 64 + 2
    ):
        raise RecordDamaged("checksum line malformed")
    expected = trailer[len(_PREFIX) : len(_PREFIX) + 64]
    if hashlib.sha256(body).hexdigest().encode() != expected:
        raise RecordDamaged("checksum mismatch (file changed or damaged after it was written)")
    return body


def dumps(data: object) -> bytes:
    """Compact JSON for values that are not pydantic models (checkpoint indexes, counters)."""
    return json.dumps(data, separators=(",", ":"), sort_keys=True).encode()
