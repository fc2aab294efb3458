"""The radar's records in the state store: team-wide on PostgreSQL, beside the run on files.

Two namespaces of keyed records (``get_record``/``put_record``/``delete_record``/
``list_records``, the same on both backends):

- ``radar-sessions``: one ``Sighting`` per live session (key: its session id): its task, the
  workstation that runs it (team mode), its tip and each changed file's hunks and clipped diff.
  Written by the radar of the workstation running the session whenever its work moved, with a
  time to live, so a workstation that died stops being compared; deleted when the session ends.
- ``radar-collisions``: one ``Collision`` per overlapping pair of live sessions (key from the
  two session ids, ``collision_key``). Written when a pair first overlaps or its overlap
  changes, deleted when it no longer does or one side ended. Whoever creates it (a version
  check: the first writer) emits ``radar.collision``; whoever deletes it, ``radar.resolved``.

``collisions(store)`` and ``collisions_for(store, task_id)`` are the public reads (the status
report, a session's prompt, the coordination surface).

Every diff stored is clipped (``SHORT_DIFF_LIMIT`` per side of a collision, ``FILE_DIFF_LIMIT``
per file of a sighting) and every known secret masked (``safety.secret_mask``).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from orchestrator.models import utcnow
from orchestrator.radar.hunks import FileDiff, Hunk
from orchestrator.radar.namespaces import COLLISIONS, SIGHTINGS
from orchestrator.radar.overlap import Severity

if TYPE_CHECKING:
    # A type only: ``council status``'s quick look reads collisions without a store.
    from orchestrator.state.protocol import StateStore

__all__ = [
    "COLLISIONS",
    "FILE_DIFF_LIMIT",
    "SHORT_DIFF_LIMIT",
    "SIGHTINGS",
    "Collision",
    "CollisionSide",
    "HunkPair",
    "SightedFile",
    "Sighting",
    "clip",
    "collision_key",
    "collisions",
    "collisions_for",
    "ranked",
    "read_collision",
    "short_diff",
    "sightings",
]

log = logging.getLogger(__name__)

SHORT_DIFF_LIMIT = 1_500  # characters of what one side changed on the shared files
FILE_DIFF_LIMIT = 2_000  # characters of one file's diff in a sighting


class SightedFile(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    hunks: list[tuple[int, int]] = Field(default_factory=list)  # (start, count) on the base
    binary: bool = False
    diff: str = ""  # clipped, masked

    def as_diff(self, path: str) -> FileDiff:
        hunks = [Hunk(start, count) for start, count in self.hunks]
        return FileDiff(path, hunks, self.diff.splitlines(), self.binary)


class Sighting(BaseModel):
    """One live session's work as its radar last saw it."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    session_id: str
    task_id: str
    workstation: str | None = None
    tip: str
    fork: str | None = None  # the base commit its worktree started from
    branch: str | None = None  # its branch (a team's others fetch it from its published copy)
    digest: str
    files: dict[str, SightedFile] = Field(default_factory=dict)
    seen_at: datetime = Field(default_factory=utcnow)

    def diffs(self) -> dict[str, FileDiff]:
        return {path: found.as_diff(path) for path, found in self.files.items()}

    @property
    def committed(self) -> bool:
        """Its tip holds work of its own (a ``merge-tree`` of it means something)."""
        return self.fork is None or self.tip != self.fork

    @staticmethod
    def of(
        session_id: str,
        task_id: str,
        tip: str,
        fork: str | None,
        digest: str,
        files: Mapping[str, FileDiff],
        workstation: str | None = None,
        branch: str | None = None,
    ) -> Sighting:
        sighted = {
            path: SightedFile(
                hunks=[(h.start, h.count) for h in diff.hunks],
                binary=diff.binary,
                diff=clip("\n".join(diff.text), FILE_DIFF_LIMIT),
            )
            for path, diff in files.items()
        }
        return Sighting(
            session_id=session_id,
            task_id=task_id,
            workstation=workstation,
            tip=tip,
            fork=fork,
            branch=branch,
            digest=digest,
            files=sighted,
        )


class HunkPair(BaseModel):
    """Two hunks that touch, one of each side, on ``path`` (base-side line ranges)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    path: str
    a: str  # "lines 10-14", "after line 3"
    b: str


class CollisionSide(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    task_id: str
    session_id: str
    workstation: str | None = None
    tip: str
    diff: str = ""  # what this side changed on the shared paths: clipped, masked


class Collision(BaseModel):
    """Two live sessions changing the same files (grades: ``overlap.Severity``)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)

    key: str
    severity: Severity
    a: CollisionSide
    b: CollisionSide
    paths: list[str]
    hunks: list[HunkPair] = Field(default_factory=list)
    conflict: bool = False
    conflict_paths: list[str] = Field(default_factory=list)
    first_seen: datetime = Field(default_factory=utcnow)
    updated_at: datetime = Field(default_factory=utcnow)

    @property
    def tasks(self) -> tuple[str, str]:
        return (self.a.task_id, self.b.task_id)

    def involves(self, task_id: str) -> bool:
        return task_id in self.tasks

    def other(self, task_id: str) -> CollisionSide:
        """The side that is not ``task_id``'s."""
        return self.b if self.a.task_id == task_id else self.a

    def same_finding(self, other: Collision) -> bool:
        """Whether ``other`` says what this says (only the times and tips may differ)."""
        keep = {"first_seen", "updated_at", "a", "b"}
        sides = ({"tip"}, {"tip"})
        return (
            self.model_dump(exclude=keep) == other.model_dump(exclude=keep)
            and self.a.model_dump(exclude=sides[0]) == other.a.model_dump(exclude=sides[0])
            and self.b.model_dump(exclude=sides[1]) == other.b.model_dump(exclude=sides[1])
        )

    def stored(self) -> dict[str, Any]:
        from orchestrator.safety.secret_mask import masked_model  # a write's: not a reader's

        return masked_model(self).model_dump(mode="json")


def collision_key(session_a: str, session_b: str) -> str:
    """The record key of a pair of sessions, the same in either order."""
    first, second = sorted((session_a, session_b))
    return "c-" + hashlib.sha256(f"{first}\0{second}".encode()).hexdigest()[:32]


def clip(text: str, limit: int) -> str:
    """``text`` with every known secret masked, cut to ``limit`` characters (the cut said)."""
    from orchestrator.safety.secret_mask import hidden  # a write's: not a reader's (status)

    shown = hidden(text)
    if len(shown) <= limit:
        return shown
    return shown[: limit - 20].rstrip() + "\n... (diff clipped)"


def read_collision(data: Mapping[str, Any]) -> Collision | None:
    try:
        return Collision.model_validate(data)
    except ValidationError as exc:
        log.warning("radar: a collision record that does not parse is ignored: %s", exc)
        return None


async def collisions(store: StateStore) -> list[Collision]:
    """Every live collision the store holds (every workstation's), most severe first."""
    found = []
    for record in await store.list_records(COLLISIONS):
        collision = read_collision(record.data)
        if collision is not None:
            found.append(collision)
    return ranked(found)


def ranked(found: Iterable[Collision]) -> list[Collision]:
    """Collisions most severe first (the order ``collisions`` gives)."""
    return sorted(found, key=lambda c: (-c.severity.rank, c.paths, c.key))


async def collisions_for(store: StateStore, task_id: str) -> list[Collision]:
    """The live collisions ``task_id``'s session is part of."""
    return [c for c in await collisions(store) if c.involves(task_id)]


async def sightings(store: StateStore) -> list[Sighting]:
    """Every live session's sighting (expired ones read as absent)."""
    found = []
    for record in await store.list_records(SIGHTINGS):
        try:
            found.append(Sighting.model_validate(record.data))
        except ValidationError as exc:
            log.warning("radar: a session sighting that does not parse is ignored: %s", exc)
    return found


def short_diff(files: Mapping[str, FileDiff], paths: Sequence[str]) -> str:
    """What one side changed on ``paths``: its diff there, clipped and masked."""
    text = "\n".join("\n".join(files[path].text) for path in paths if path in files)
    return clip(text, SHORT_DIFF_LIMIT)
