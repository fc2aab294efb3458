"""A file record's versions older than its ``v<N>.json`` window, kept compressed.

::

    <record dir>/a000000000003.json   a version that just left the window, waiting (whole)
    <record dir>/history.jsonl.gz     every older version, in batches (``history_archive``)

A version leaving the window is renamed from ``v<N>`` to ``a<N>`` (one rename, as cheap as the
unlink it replaces); once ``ARCHIVE_BATCH`` wait, they are packed as one batch appended to the
archive, which is written whole to a temp file and renamed over the old one, so a crash leaves
the old archive or the new one, never a torn one. The waiting files go only after that; a crash
between the two leaves them to be packed again, which ``compact`` notices (their versions are
already in the archive) and only removes them.

Everything here expects the caller to hold the record's lock (exclusive to compact).
"""

from __future__ import annotations

import contextlib
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from orchestrator.errors import StateCorrupted
from orchestrator.state.file.fsops import FileOperations, durable_write
from orchestrator.state.file.record_files.codec import RecordDamaged, decode
from orchestrator.state.history_archive import ArchiveDamaged, pack, unpack

__all__ = ["ARCHIVE_NAME", "RecordArchive", "read_doc"]

ARCHIVE_NAME = "history.jsonl.gz"


class RecordArchive:
    """The archive half of one record kind's history (``dir_for`` names a record's directory)."""

    def __init__(self, dir_for: Callable[[str], Path], ops: FileOperations) -> None:
        self._dir_for = dir_for
        self._ops = ops

    def path(self, key: str) -> Path:
        return self._dir_for(key) / ARCHIVE_NAME

    def pending_path(self, key: str, version: int) -> Path:
        return self._dir_for(key) / f"a{version:012d}.json"

    def pending_versions(self, key: str) -> list[int]:
        """Versions waiting to be packed, oldest first."""
        try:
            entries = os.scandir(self._dir_for(key))
        except FileNotFoundError:
            return []
        with entries:
            names = [e.name for e in entries]
        return sorted(
            int(n[1:-5])
            for n in names
            if n.startswith("a") and n.endswith(".json") and n[1:-5].isdigit()
        )

    def pending_docs(self, key: str) -> list[dict[str, Any]]:
        """The waiting versions as documents (a damaged one is left out)."""
        docs = []
        for version in self.pending_versions(key):
            with contextlib.suppress(RecordDamaged, OSError):
                docs.append(read_doc(self.pending_path(key, version)))
        return docs

    def archived_docs(self, key: str) -> list[dict[str, Any]]:
        """Every packed version, oldest first; ``StateCorrupted`` when the archive is damaged."""
        path = self.path(key)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            return []
        try:
            return unpack(data)
        except ArchiveDamaged as exc:
            raise StateCorrupted(
                path,
                f"the history archive of record {key!r} is damaged ({exc})",
                f"move {path} away: the record and its newest versions are intact, only the "
                "versions archived there are lost",
            ) from None

    def compact(self, key: str, *, sync: bool = True) -> int:
        """Pack every waiting version into the archive as one batch; how many were packed."""
        versions = self.pending_versions(key)
        if not versions:
            return 0
        path = self.path(key)
        try:
            old = path.read_bytes()
        except FileNotFoundError:
            old = b""
        try:
            archived = {int(d.get("version", 0)) for d in unpack(old)} if old else set()
        except ArchiveDamaged:
            # Appending to a damaged archive would bury these versions behind it: they stay
            # whole where they are, and reading the history names the damage.
            return 0
        docs = [d for d in self.pending_docs(key) if int(d.get("version", 0)) not in archived]
        if docs:
            docs.sort(key=lambda d: int(d.get("version", 0)))
            durable_write(path, old + pack(docs), self._ops, sync=sync)
        for version in versions:
            self._ops.unlink(self.pending_path(key, version))
        return len(docs)


def read_doc(path: Path) -> dict[str, Any]:
    """A record file's document as stored (JSON-shaped); RecordDamaged when it is damaged."""
    doc = json.loads(decode(path.read_bytes()))
    if not isinstance(doc, dict):
        raise RecordDamaged("is not a JSON object")
    return doc
