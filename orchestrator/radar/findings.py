"""What a pair of overlapping sessions is found to be (pure): the ``Collision`` record made
from their two sightings, their overlap and the paths a merge of their tips conflicts on, and
the events said of it (``radar.collision`` by a record's creator, again when a rewrite makes
it graver; ``radar.resolved`` by its deleter)."""

from __future__ import annotations

from orchestrator.events.radar import RadarCollision, RadarResolved
from orchestrator.models import utcnow
from orchestrator.radar.overlap import PairOverlap, Severity, compare
from orchestrator.radar.records import Collision, CollisionSide, HunkPair, Sighting, short_diff

__all__ = ["collision_event", "collision_of", "resolved_event"]


def collision_of(
    key: str,
    mine: Sighting,
    other: Sighting,
    overlap: PairOverlap,
    conflicts: list[str] | None,
    stored: Collision | None,
) -> Collision:
    """The record of an overlapping pair, sides in session order (the same from either side)."""
    first, second = sorted((mine, other), key=lambda s: s.session_id)
    if first is not mine:
        overlap = compare(first.diffs(), second.diffs())
    paths = overlap.paths
    shared = [path for path in (conflicts or []) if path in paths] if conflicts else []
    if conflicts and not shared:
        shared = list(conflicts)  # a conflict on a path one side renamed or both added
    severity = overlap.severity or Severity.FILE
    if shared:
        severity = Severity.CONFLICT
    hunks = [
        HunkPair(path=found.path, a=a.label(), b=b.label())
        for found in overlap.files
        for a, b in found.touching
    ]

    def side(sighting: Sighting) -> CollisionSide:
        return CollisionSide(
            task_id=sighting.task_id,
            session_id=sighting.session_id,
            workstation=sighting.workstation,
            tip=sighting.tip,
            diff=short_diff(sighting.diffs(), paths),
        )

    now = utcnow()
    return Collision(
        key=key,
        severity=severity,
        a=side(first),
        b=side(second),
        paths=paths,
        hunks=hunks[:20],
        conflict=bool(shared),
        conflict_paths=shared,
        first_seen=stored.first_seen if stored is not None else now,
        updated_at=now,
    )


def collision_event(found: Collision, escalated_from: str | None = None) -> RadarCollision:
    return RadarCollision(
        escalated_from=escalated_from,
        task_id=found.a.task_id,
        other_task_id=found.b.task_id,
        session_id=found.a.session_id,
        other_session_id=found.b.session_id,
        paths=found.paths,
        severity=found.severity.value,
        conflict_paths=found.conflict_paths,
        key=found.key,
    )


def resolved_event(found: Collision, reason: str) -> RadarResolved:
    return RadarResolved(
        task_id=found.a.task_id,
        other_task_id=found.b.task_id,
        session_id=found.a.session_id,
        other_session_id=found.b.session_id,
        paths=found.paths,
        reason=reason,
        key=found.key,
    )
