"""Finding a known secret in bytes of any size, whatever whitespace was put inside it.

A CLI that writes its key into a file may not write it in one piece: a terminal or an
editor wraps a long token over two lines, ``base64 -w 12`` breaks the encoded text every 12
characters, a pretty-printer indents the continuation. So the search is made on the bytes
with every ASCII whitespace byte (space, tab, CR, LF, VT, FF) taken out (``squeeze``), for
needles taken out the same way: a needle found there is the secret written with whitespace
inserted anywhere in it, or not at all. Base64 at any wrap width is found that way too: its
text with the line breaks taken out is the unwrapped base64, whose 3 alignments
``secret_forms`` gives.

- ``Finder``: one stream read in chunks of any size, in order (``feed``). The squeezed bytes
  of the end of a chunk, as many as the longest needle less one, are kept and searched again
  with the next chunk, so a needle across a chunk boundary is found; the first hit (earliest
  in the stream, then the longest needle) stops the search and says its needle and the line
  its first byte is on (1-based, by the LF bytes before it in the stream as written). What a
  chunk costs: one ``bytes.translate``, one ``count`` of its line breaks and one ``find`` per
  needle, all in C; nothing of the stream is kept but that short tail.
- ``first(data, needles)``: the same for bytes already held whole.
- ``mask(data, needles)``: every occurrence replaced by ``***``, the whitespace inside an
  occurrence taken out with it but its line breaks kept (the line numbers after it stay).

No needle may be empty once squeezed (``ValueError`` naming it).

Time, not size, bounds a search: ``budget_seconds()`` is what one check may take (the merge
gate's, ``merge.secret_gate``, and the worktree scrub's, ``secret_scrub``):
``COUNCIL_SECRET_SCAN_SECONDS`` or 120.
"""

from __future__ import annotations

import functools
import math
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass

from orchestrator.errors import UsageError
from orchestrator.safety.redaction import MASK

__all__ = [
    "BUDGET",
    "BUDGET_VARIABLE",
    "CHUNK",
    "WHITESPACE",
    "Finder",
    "Hit",
    "budget_seconds",
    "first",
    "mask",
    "mask_text",
    "squeeze",
]

BUDGET = 120.0  # seconds one check may read for, unless ``BUDGET_VARIABLE`` says otherwise
BUDGET_VARIABLE = "COUNCIL_SECRET_SCAN_SECONDS"

WHITESPACE = b" \t\r\n\v\f"
CHUNK = 1 << 20  # bytes a caller reads at once
_BLOCK = 1 << 16  # bytes mapped at once from a squeezed position back to the bytes as written
_RUN = re.compile(rb"[^ \t\r\n\v\f]+")
_MASK = MASK.encode()


def budget_seconds(value: float | str | None = None, where: str = "the budget") -> float:
    """The seconds a check may take: ``value`` (``where`` names it in an error), else
    ``BUDGET_VARIABLE`` of the environment, else ``BUDGET``; ``UsageError`` for a bad one."""
    if value is None:
        value = os.environ.get(BUDGET_VARIABLE) or BUDGET
        where = f"the environment variable {BUDGET_VARIABLE}"
    try:
        seconds = float(value)
    except ValueError:
        seconds = math.nan
    if not math.isfinite(seconds) or seconds <= 0:
        raise UsageError(
            f"{where} is {value!r}: the seconds a secret check may take must be a number "
            f"above 0 ({BUDGET:g} by default)"
        )
    return seconds


def squeeze(data: bytes) -> bytes:
    """``data`` without its whitespace bytes."""
    return data.translate(None, WHITESPACE)


@dataclass(frozen=True)
class Hit:
    index: int  # of the needle found, in the sequence given
    line: int  # 1-based line of the stream its first byte is on


def _squeezed(needles: Sequence[bytes]) -> tuple[bytes, ...]:
    """``needles`` each squeezed; remembered for the last few needle sets (a store's choke
    point asks with the same known secrets for every record)."""
    return _squeezed_tuple(tuple(needles))


@functools.lru_cache(maxsize=16)
def _squeezed_tuple(needles: tuple[bytes, ...]) -> tuple[bytes, ...]:
    flat = []
    for at, needle in enumerate(needles):
        squeezed = squeeze(needle)
        if not squeezed:
            raise ValueError(f"needle {at} of {len(needles)} is empty once whitespace is taken out")
        flat.append(squeezed)
    return tuple(flat)


class Finder:
    """The first needle in one stream fed in chunks (module doc)."""

    def __init__(self, needles: Sequence[bytes]) -> None:
        self._needles = _squeezed(needles)
        self._keep = max((len(n) for n in self._needles), default=1) - 1
        self._tail = b""  # the squeezed end of what was fed, ``_keep`` bytes at most
        self._tail_lines: list[int] = []  # the line of each byte of ``_tail``
        self._lines = 0  # LF bytes fed so far
        self.hit: Hit | None = None

    def feed(self, chunk: bytes) -> Hit | None:
        """Search ``chunk``, the stream's next bytes; the first hit so far, if any."""
        if self.hit is not None or not chunk or not self._needles:
            return self.hit
        buffer = self._tail + squeeze(chunk)
        best: tuple[int, int] | None = None
        for index, needle in enumerate(self._needles):
            at = buffer.find(needle)
            if at >= 0 and (best is None or at < best[0]):
                best = (at, index)
        if best is not None:
            at, index = best
            if at < len(self._tail):
                line = self._tail_lines[at]
            else:
                offset = _offsets(chunk, [at - len(self._tail)])[0]
                line = self._lines + chunk.count(b"\n", 0, offset) + 1
            self.hit = Hit(index, line)
            return self.hit
        total = chunk.count(b"\n")
        self._carry(buffer, chunk, total)
        self._lines += total
        return None

    def _carry(self, buffer: bytes, chunk: bytes, total: int) -> None:
        if self._keep == 0:
            return
        fresh = len(buffer) - len(self._tail)  # squeezed bytes of this chunk
        from_chunk = min(fresh, self._keep)
        old = min(len(self._tail), self._keep - from_chunk)  # of the old tail, still kept
        lines = self._tail_lines[len(self._tail_lines) - old :] if old else []
        if from_chunk:
            offsets = _last_offsets(chunk, from_chunk)
            after = chunk.count(b"\n", offsets[0])
            line = self._lines + total - after + 1
            previous = offsets[0]
            for offset in offsets:
                line += chunk.count(b"\n", previous, offset)
                previous = offset
                lines.append(line)
        self._tail = buffer[len(buffer) - (old + from_chunk) :]
        self._tail_lines = lines


def first(data: bytes, needles: Sequence[bytes]) -> Hit | None:
    """The first needle in ``data``: what ``Finder(needles).feed(data)`` says, without the
    tail a stream keeps for its next chunk (there is none: every record a store writes is
    looked at so, and the tail's line offsets were most of what a miss cost)."""
    flat = _squeezed(needles)
    if not data or not flat:
        return None
    buffer = squeeze(data)
    best: tuple[int, int] | None = None
    for index, needle in enumerate(flat):
        at = buffer.find(needle)
        if at >= 0 and (best is None or at < best[0]):
            best = (at, index)
    if best is None:
        return None
    at, index = best
    offset = _offsets(data, [at])[0]
    return Hit(index, data.count(b"\n", 0, offset) + 1)


def mask(data: bytes, needles: Sequence[bytes]) -> bytes:
    """``data`` with every needle, whitespace inserted in it or not, replaced by ``***``
    (module doc); the same object when none is in it."""
    flat = squeeze(data)
    spans: list[tuple[int, int]] = []
    for needle in _squeezed(needles):
        at = flat.find(needle)
        while at >= 0:
            spans.append((at, at + len(needle)))
            at = flat.find(needle, at + len(needle))
    if not spans:
        return data
    spans.sort()
    merged = [spans[0]]
    for start, end in spans[1:]:
        if start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    wanted = sorted({k for start, end in merged for k in (start, end - 1)})
    where = dict(zip(wanted, _offsets(data, wanted), strict=True))
    parts: list[bytes] = []
    done = 0
    for start, end in merged:
        first_byte, last_byte = where[start], where[end - 1]
        parts.append(data[done:first_byte])
        parts.append(_MASK + b"\n" * data.count(b"\n", first_byte, last_byte))
        done = last_byte + 1
    parts.append(data[done:])
    return b"".join(parts)


def mask_text(text: str, needles: Sequence[bytes]) -> str:
    """``mask`` for a text (UTF-8)."""
    data = text.encode("utf-8", "surrogateescape")
    done = mask(data, needles)
    return text if done is data else done.decode("utf-8", "surrogateescape")


def _last_offsets(data: bytes, count: int) -> list[int]:
    """Where the last ``count`` non-whitespace bytes of ``data`` are (it has that many): read
    from a window at its end, widened until it holds them, not from its start."""
    width = 2 * count + 64
    while True:
        start = max(0, len(data) - width)
        window = data[start:]
        held = len(squeeze(window))
        if held >= count or start == 0:
            return [start + at for at in _offsets(window, range(held - count, held))]
        width *= 4


def _offsets(data: bytes, positions: Sequence[int] | range) -> list[int]:
    """Where the non-whitespace bytes at ``positions`` (ascending, counted in
    ``squeeze(data)``) are in ``data``: block by block in C, one block read in Python."""
    found: list[int] = []
    wanted = iter(positions)
    target = next(wanted, None)
    seen = 0  # squeezed bytes before ``block``
    block = 0
    while target is not None and block < len(data):
        piece = data[block : block + _BLOCK]
        size = len(squeeze(piece))
        if target < seen + size:
            for run in _RUN.finditer(piece):
                length = run.end() - run.start()
                while target is not None and target < seen + length:
                    found.append(block + run.start() + target - seen)
                    target = next(wanted, None)
                seen += length
                if target is None:
                    break
            else:
                block += _BLOCK
                continue
            break
        seen += size
        block += _BLOCK
    if target is not None:
        raise ValueError(f"position {target} is past the {seen} non-whitespace bytes given")
    return found
