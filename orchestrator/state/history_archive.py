"""The compressed archive of a record's old versions, the same in every backend.

A record's newest versions stay whole where its backend keeps them (``v<N>.json`` files, the
``task_history`` rows); those that fall out of that window are not dropped but packed here, a
batch at a time, so the full audit trail costs little space per version:

- a batch is one gzip member holding JSON lines, oldest version first: the first line is the
  whole document, every later one only its delta from the line before (``delta``), which is a
  few fields for a typical write;
- batches are independent: a batch is read without any other, and a backend's archive is the
  concatenation of its batches (a valid multi-member gzip file: ``zcat`` shows every line).

Documents are JSON-shaped (what the backend stored, already masked), so a delta is exact.
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "ARCHIVE_BATCH",
    "ArchiveDamaged",
    "apply_delta",
    "delta",
    "pack",
    "unpack",
    "window",
]

ARCHIVE_BATCH = 32
"""How many versions beyond the recent window wait uncompressed before they are packed as one
batch: larger batches compress better (one whole document per batch, deltas after it)."""

_GZIP = 31  # zlib's wbits for the gzip container


class ArchiveDamaged(ValueError):
    """An archive's bytes are not intact gzip batches of JSON lines."""


def delta(old: Mapping[str, Any], new: Mapping[str, Any]) -> dict[str, Any]:
    """What turns ``old`` into ``new``: ``set`` pairs of (path, value) and ``del`` paths.

    Mappings are compared key by key, so a change deep inside one (a task's ``metadata``)
    costs its path and value, not the whole mapping again; anything else is set whole."""
    sets: list[list[Any]] = []
    dels: list[list[str]] = []
    _walk([], old, new, sets, dels)
    found: dict[str, Any] = {}
    if sets:
        found["set"] = sets
    if dels:
        found["del"] = dels
    return found


def _walk(
    path: list[str],
    old: Mapping[str, Any],
    new: Mapping[str, Any],
    sets: list[list[Any]],
    dels: list[list[str]],
) -> None:
    for key in old:
        if key not in new:
            dels.append([*path, key])
    for key, value in new.items():
        if key in old and old[key] == value:
            continue
        before = old.get(key)
        if key in old and isinstance(before, Mapping) and isinstance(value, Mapping):
            _walk([*path, key], before, value, sets, dels)
        else:
            sets.append([[*path, key], value])


def apply_delta(doc: Mapping[str, Any], change: Mapping[str, Any]) -> dict[str, Any]:
    """``doc`` with ``change`` (from ``delta``) applied; ``doc`` itself is left as it was."""
    result: dict[str, Any] = json.loads(json.dumps(doc))
    for path in change.get("del", ()):
        parent = _parent(result, path)
        parent.pop(path[-1], None)
    for path, value in change.get("set", ()):
        _parent(result, path)[path[-1]] = value
    return result


def _parent(doc: dict[str, Any], path: Sequence[str]) -> dict[str, Any]:
    node = doc
    for key in path[:-1]:
        node = node[key]
    return node


def pack(docs: Iterable[Mapping[str, Any]]) -> bytes:
    """One batch (a gzip member) of ``docs``, oldest first; empty bytes for no docs."""
    lines: list[bytes] = []
    previous: Mapping[str, Any] | None = None
    for doc in docs:
        entry = {"doc": doc} if previous is None else {"delta": delta(previous, doc)}
        lines.append(json.dumps(entry, separators=(",", ":"), sort_keys=True).encode())
        previous = doc
    if not lines:
        return b""
    compressor = zlib.compressobj(9, zlib.DEFLATED, _GZIP)
    return compressor.compress(b"\n".join(lines) + b"\n") + compressor.flush()


def unpack(data: bytes) -> list[dict[str, Any]]:
    """Every document of an archive (its batches concatenated), oldest first.

    ``ArchiveDamaged`` when any batch is not intact (a gzip member's own checksum covers it)."""
    docs: list[dict[str, Any]] = []
    rest = data
    while rest:
        decompressor = zlib.decompressobj(_GZIP)
        try:
            text = decompressor.decompress(rest)
        except zlib.error as exc:
            raise ArchiveDamaged(f"batch {len(docs)} cannot be decompressed: {exc}") from None
        if not decompressor.eof:
            raise ArchiveDamaged("the last batch is cut short")
        rest = decompressor.unused_data
        docs.extend(_batch_docs(text))
    return docs


def _batch_docs(text: bytes) -> list[dict[str, Any]]:
    docs: list[dict[str, Any]] = []
    try:
        for line in text.splitlines():
            entry = json.loads(line)
            if "doc" in entry:
                docs.append(entry["doc"])
            else:
                docs.append(apply_delta(docs[-1], entry["delta"]))
    except (ValueError, KeyError, IndexError, TypeError) as exc:
        raise ArchiveDamaged(f"a batch holds a line that is not a version: {exc}") from None
    return docs


def window(
    docs: Iterable[Mapping[str, Any]], *, limit: int | None, before_version: int | None
) -> list[dict[str, Any]]:
    """``docs`` (of one record, any order, a version possibly twice) newest first, each
    version once, only those below ``before_version``, at most ``limit`` of them."""
    seen: dict[int, dict[str, Any]] = {}
    for doc in docs:
        version = int(doc.get("version", 0))
        if before_version is None or version < before_version:
            seen.setdefault(version, dict(doc))
    newest_first = [seen[v] for v in sorted(seen, reverse=True)]
    return newest_first if limit is None else newest_first[: max(0, limit)]
