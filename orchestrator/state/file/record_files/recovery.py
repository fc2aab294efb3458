"""A damaged record put right: moved to quarantine intact, its newest valid history version
made current under a version number higher than any the record has had (``RecordKind``'s
``load_or_recover``, under the record's exclusive lock), or ``StateCorrupted`` naming the way
out when no valid version is left."""

from __future__ import annotations

import contextlib
import hashlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar

from pydantic import BaseModel

from orchestrator.errors import StateCorrupted
from orchestrator.events import Event
from orchestrator.events.state import StateRecovered
from orchestrator.models import utcnow
from orchestrator.state.file.fsops import FileOperations, durable_write, write_error

__all__ = ["Recovery", "recover"]

M = TypeVar("M", bound=BaseModel)


class RecordKind(Protocol[M]):
    """What a recovery uses of ``records.RecordKind`` (which imports this module)."""

    name: str
    ops: FileOperations
    quarantine_dir: Path

    def current_path(self, key: str) -> Path: ...
    def dir_for(self, key: str) -> Path: ...
    def history_versions(self, key: str) -> list[int]: ...
    def history_path(self, key: str, version: int) -> Path: ...
    def iter_history(self, key: str) -> Iterator[M]: ...
    def prune_history(self, key: str) -> int: ...
    def _write_file(
        self, key: str, record: M, previous_version: int | None, durable: bool, remember: bool
    ) -> M: ...


@dataclass(frozen=True)
class Recovery:
    """What a recovery did, for the warning event."""

    kind: str
    key: str
    reason: str
    quarantined: Path | None
    recovered_from: int
    new_version: int

    def event(self) -> Event:
        return StateRecovered(
            kind=self.kind,
            key=self.key,
            reason=self.reason,
            quarantined=str(self.quarantined) if self.quarantined else None,
            recovered_from_version=self.recovered_from,
            new_version=self.new_version,
        )


def recover(kind: RecordKind[M], key: str, reason: str) -> tuple[M, Recovery]:
    """Quarantine the damaged record ``key`` and put its newest valid history version in its
    place (exclusive lock held); StateCorrupted when it has none."""
    current = kind.current_path(key)
    versions = kind.history_versions(key)
    source = next(kind.iter_history(key), None)
    if source is None:
        try:
            kept = _quarantine_copy(kind, key, current)
            where = f"a copy is kept at {kept}" if kept else "no copy could be kept"
        except OSError as exc:
            where = f"no copy could be kept ({exc.strerror or exc})"
        # The whole directory: its damaged history goes with it, or the record would be
        # found damaged again (a missing current version with history is a damage too).
        raise StateCorrupted(
            current,
            f"{kind.name} record {key!r} is damaged ({reason}) and has no valid history",
            f"{where}; restore a checkpoint (`council checkpoint list`, then `council "
            f"checkpoint restore`), or move the record's directory {kind.dir_for(key)} "
            "away to start the record afresh; then `council resume`",
        )
    try:
        return _replace_from_history(kind, key, reason, versions, source)
    except OSError as exc:
        # The damaged file is in quarantine (then the current version is missing) or still
        # in place, and history is untouched: the next read recovers it.
        raise write_error(
            current, exc, f"{kind.name} record {key!r} is damaged ({reason}) and not recovered"
        ) from exc


def _replace_from_history(
    kind: RecordKind[M], key: str, reason: str, versions: list[int], source: M
) -> tuple[M, Recovery]:
    current = kind.current_path(key)
    quarantined = _quarantine_move(kind, key, current)
    # One past the highest version this record can have had (the damaged current was at
    # most the newest history entry + 1), so a holder of the lost version gets a
    # VersionConflict and versions only ever increase.
    new_version = max(versions) + 2
    source_version = int(getattr(source, "version", 0))
    recovered = source.model_copy(update={"version": new_version, "updated_at": utcnow()})
    kind._write_file(key, recovered, None, True, True)
    # History must name the highest version handed out, or a second damage of this same
    # file would compute the same new version again. The link shares the current file's
    # bytes, so if those are damaged in place it is skipped as a source, but its name
    # still counts. The record is recovered by now: a disk that refuses these last steps
    # costs only that safeguard, never the read.
    with contextlib.suppress(OSError):
        with contextlib.suppress(FileExistsError):
            kind.ops.link(current, kind.history_path(key, new_version))
        kind.ops.fsync_dir(current.parent)
        kind.prune_history(key)
    return recovered, Recovery(kind.name, key, reason, quarantined, source_version, new_version)


def _quarantine_target(kind: RecordKind[Any], key: str, raw: bytes) -> Path:
    digest = hashlib.sha256(raw).hexdigest()[:16]
    kind.ops.makedirs(kind.quarantine_dir)
    return kind.quarantine_dir / f"{key}.{digest}.json"


def _quarantine_move(kind: RecordKind[Any], key: str, current: Path) -> Path | None:
    try:
        raw = current.read_bytes()
    except FileNotFoundError:
        return None
    target = _quarantine_target(kind, key, raw)
    kind.ops.replace(current, target)
    return target


def _quarantine_copy(kind: RecordKind[Any], key: str, current: Path) -> Path | None:
    try:
        raw = current.read_bytes()
    except FileNotFoundError:
        return None
    target = _quarantine_target(kind, key, raw)
    if not target.exists():
        durable_write(target, raw, kind.ops)
    return target
