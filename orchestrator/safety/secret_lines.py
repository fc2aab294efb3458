"""Masking a known secret in a stream of lines, also when it was written over several lines.

A line-by-line mask cannot see a token a terminal wrapped over two lines, or base64 written
``base64 -w 12``: each line holds a piece, none the whole. ``LineHold`` sits between the lines
of one stream and where they are written (a CLI's log, its parser): a batch of lines is masked
as one text (``secret_stream.mask``: every needle with whitespace inserted anywhere in it, line
breaks included, in every form of ``secret_forms``), and its last lines are held back only
when they could be the start of a needle the next line completes: when a suffix of the batch,
its whitespace taken out, is a proper prefix of a needle (taken out the same way). The lines
from the one that suffix starts on are kept and masked again with the next batch; the others
are released, masked, in order. ``finish`` releases what is held at the end of the stream.

What it costs: nothing but a check when no secret is known; otherwise one ``squeeze`` and one
``find`` per needle over the batch (in C) and, for its tail (as many non-whitespace bytes as
the longest needle less one), a scan for the bytes a needle starts with and a ``startswith``
for each of those. Lines are held only while such a prefix stands at the end, and at most
``MAX_HELD`` of them: past that the oldest are released (masked as far as seen), so a stream
of blank lines after a needle's first bytes cannot make it hold the whole output.

A JSON line (a CLI's stream-json) may hold a token split by an escaped line break (``\\n``,
``\\r``, ``\\t`` inside a string): when a batch holds such escapes it is searched again with
each of them read as whitespace, and, when that finds a needle, released so masked (those
escapes written as two spaces: the line stays valid JSON).

A masked needle keeps the line breaks it spanned (``secret_stream.mask``), so a batch of
``n`` lines comes out as ``n`` lines, each released with the payload it came with.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import Generic, TypeVar

from orchestrator.safety.secret_stream import mask_text, squeeze

__all__ = ["MAX_HELD", "LineHold", "Prefixes"]

T = TypeVar("T")
MAX_HELD = 256  # lines one stream may hold back at most (base64 of a 190-byte key, 1 a line)


class Prefixes:
    """The squeezed needles, and which suffix of a text could start one of them."""

    __slots__ = ("_by_first", "_starts", "keep", "needles")

    def __init__(self, needles: Sequence[bytes]) -> None:
        self.needles = tuple(needles)
        squeezed = {squeeze(needle) for needle in needles} - {b""}
        self.keep = max((len(n) for n in squeezed), default=1) - 1  # bytes a prefix may have
        self._by_first: dict[int, tuple[bytes, ...]] = {}
        for needle in sorted(squeezed):
            self._by_first[needle[0]] = (*self._by_first.get(needle[0], ()), needle)
        firsts = b"".join(re.escape(bytes([byte])) for byte in sorted(self._by_first))
        self._starts = re.compile(b"[" + firsts + b"]") if firsts else None

    def open_suffix(self, tail: bytes) -> int:
        """The length of the longest suffix of ``tail`` (squeezed) that is a proper prefix of a
        needle; 0 when none is."""
        if self._starts is None:
            return 0
        tail = tail[len(tail) - self.keep :] if len(tail) > self.keep else tail
        for start in self._starts.finditer(tail):
            rest = tail[start.start() :]
            if any(
                len(needle) > len(rest) and needle.startswith(rest)
                for needle in self._by_first[rest[0]]
            ):
                return len(rest)
        return 0


class LineHold(Generic[T]):
    """One stream's lines, masked over line breaks (module doc); ``needles`` is read at each
    batch (the secrets known may grow during a run)."""

    def __init__(self, needles: Callable[[], Sequence[bytes]]) -> None:
        self._needles = needles
        self._prefixes = Prefixes(())
        self._held: list[tuple[str, T]] = []

    @property
    def held(self) -> int:
        """Lines held back now."""
        return len(self._held)

    def feed(self, lines: Sequence[tuple[str, T]]) -> list[tuple[str, T]]:
        """The lines now decided, masked, in order: those of ``lines`` (each a text without
        its line break, and a payload) and of the ones held before."""
        needles = self._needles()
        if not needles:
            return [*self._release(), *lines]
        if needles is not self._prefixes.needles and tuple(needles) != self._prefixes.needles:
            self._prefixes = Prefixes(needles)
        batch = [*self._held, *lines] if self._held else list(lines)
        if not batch:
            return []
        masked = _masked(batch, needles)
        hold = self._hold_from(masked)
        hold = max(hold, len(masked) - MAX_HELD)
        self._held = masked[hold:]
        return masked[:hold]

    def finish(self) -> list[tuple[str, T]]:
        """Every line held, masked: the stream ended."""
        return self._release()

    def _release(self) -> list[tuple[str, T]]:
        held, self._held = self._held, []
        needles = self._needles()
        return _masked(held, needles) if held and needles else held

    def _hold_from(self, lines: list[tuple[str, T]]) -> int:
        """The index of the first line to hold back: ``len(lines)`` when none."""
        keep = self._prefixes.keep
        if keep <= 0:
            return len(lines)
        pieces: list[bytes] = []
        sizes: list[int] = []  # squeezed bytes of each line read, from the last one back
        total = 0
        at = len(lines)
        while at > 0 and total < keep:
            at -= 1
            piece = squeeze(lines[at][0].encode("utf-8", "surrogateescape"))
            pieces.append(piece)
            sizes.append(len(piece))
            total += len(piece)
        suffix = self._prefixes.open_suffix(b"".join(reversed(pieces)))
        if not suffix:
            return len(lines)
        line = len(lines)
        for size in sizes:  # walk back until the suffix's first byte is covered
            line -= 1
            suffix -= size
            if suffix <= 0:
                break
        return line


_ESCAPES = ("\\n", "\\r", "\\t")


def _masked(lines: Sequence[tuple[str, T]], needles: Sequence[bytes]) -> list[tuple[str, T]]:
    text = "\n".join(text for text, _ in lines)
    done = mask_text(text, needles)
    if any(escape in done for escape in _ESCAPES):
        # A JSON string's line break is written ``\n``: a token split there is found with
        # every such escape read as whitespace (kept as written when nothing is found).
        spaced = done
        for escape in _ESCAPES:
            spaced = spaced.replace(escape, "  ")
        found = mask_text(spaced, needles)
        if found is not spaced:
            done = found
    if done is text:
        return list(lines)
    texts = done.split("\n")
    if len(texts) != len(lines):  # the mask keeps every line break: never, but never wrong
        raise AssertionError(f"masking {len(lines)} lines gave {len(texts)}")
    return [(new, payload) for new, (_, payload) in zip(texts, lines, strict=True)]
