"""Checkpoint files: immutable, checksummed snapshots of a session and all its tasks.

Each is written once, durably, as ``<dir>/<checkpoint-id>.json``; only the newest ``limit`` of
a session are kept. Checkpoint ids embed their UTC creation time, so name order is time order.
Writers hold ``<dir>/.lock`` shared (ids are unique, so they never contend with each other);
upkeep takes it exclusively to remove the temp files of writers that died mid-write.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from pydantic import ValidationError

from orchestrator.errors import RecordNotFound, StateCorrupted, StateError
from orchestrator.ids import check_id
from orchestrator.models import Checkpoint, CheckpointInfo
from orchestrator.safety.crashpoints import crash_point
from orchestrator.safety.secret_mask import masked_with_json
from orchestrator.state.file.fsops import (
    FileOperations,
    NotSynced,
    durable_write,
    write_error,
)
from orchestrator.state.file.record_files.codec import RecordDamaged, decode, encode

__all__ = ["CheckpointFiles"]


class CheckpointFiles:
    def __init__(self, directory: Path, ops: FileOperations, limit: int) -> None:
        self.directory = directory
        self.ops = ops
        self.limit = limit

    @property
    def lock_path(self) -> Path:
        return self.directory / ".lock"

    def path(self, checkpoint_id: str) -> Path:
        return self.directory / f"{check_id(checkpoint_id, 'checkpoint id')}.json"

    def write(self, checkpoint: Checkpoint) -> tuple[Checkpoint, bytes]:
        """Write ``checkpoint``; what was written (every known secret masked), as a model and
        as the file's bytes."""
        target = self.path(checkpoint.checkpoint_id)
        # One dump of its megabytes, looked through for secrets and written as it is (a second
        # only when a secret was found and masked).
        written, body = masked_with_json(checkpoint)
        data = encode(body)
        try:
            self.ops.makedirs(self.directory)
            durable_write(target, data, self.ops)
        except NotSynced as exc:
            raise write_error(
                target,
                exc,
                "the checkpoint is in place now, but its directory could not be synced, "
                "so a machine crash could lose it",
            ) from exc
        except OSError as exc:
            raise write_error(target, exc, "no checkpoint was written") from exc
        crash_point("checkpoint.written")
        if len(self.ids()) <= self.limit:
            return written, data  # no session can have more than the limit: none is read (each
            # holds every task of its session, megabytes for 10,000 tasks)
        for old in self.list(checkpoint.session_id)[: -self.limit]:
            # The new checkpoint is written: an old one the disk will not let go of is only
            # kept longer, and goes with a later write.
            with contextlib.suppress(OSError):
                self.ops.unlink(self.path(old.checkpoint_id))
        return written, data

    def read(self, checkpoint_id: str) -> Checkpoint:
        target = self.path(checkpoint_id)
        try:
            return Checkpoint.model_validate_json(decode(target.read_bytes()))
        except FileNotFoundError:
            raise RecordNotFound(f"checkpoint {checkpoint_id!r} does not exist") from None
        except (RecordDamaged, ValidationError) as exc:
            raise StateCorrupted(
                target,
                f"checkpoint is damaged ({_first_line(exc)})",
                "it is left as it is; use an earlier one (`council checkpoint list`)",
            ) from None

    def ids(self) -> list[str]:
        """Every checkpoint file's id, intact or not."""
        try:
            names = sorted(e.name for e in os.scandir(self.directory) if e.name.endswith(".json"))
        except FileNotFoundError:
            return []
        return [name.removesuffix(".json") for name in names]

    def list(self, session_id: str | None = None) -> list[CheckpointInfo]:
        """Intact checkpoints, oldest first (damaged ones are left alone and not listed;
        ``verify_records`` reports them)."""
        found: list[CheckpointInfo] = []
        for name in self.ids():
            try:
                checkpoint = self.read(name)
            except StateError:
                continue
            if session_id is None or checkpoint.session_id == session_id:
                found.append(checkpoint.info())
        return sorted(found, key=lambda c: (c.created_at, c.checkpoint_id))

    def remove_temp_files(self) -> int:
        """Remove temp files; only while holding ``lock_path`` exclusively (no writer is
        in flight then, so they can only be a dead writer's)."""
        removed = 0
        with contextlib.suppress(FileNotFoundError), os.scandir(self.directory) as entries:
            for entry in entries:
                if entry.name.endswith(".tmp"):
                    self.ops.unlink(Path(entry.path))
                    removed += 1
        return removed

    def delete_session(self, session_id: str) -> None:
        for info in self.list(session_id):
            self.ops.unlink(self.path(info.checkpoint_id))


def _first_line(exc: Exception) -> str:
    """A pydantic error's summary line, without the pages of detail under it."""
    return str(exc).splitlines()[0] if str(exc) else type(exc).__name__
