"""The namespaces of the radar's keyed records, without their models (``records``): ``council
status``'s first look reads the collisions' namespace, and imports the radar's models only when
a record is there (``run.reports.quick_report``)."""

from __future__ import annotations

__all__ = ["COLLISIONS", "SIGHTINGS"]

COLLISIONS = "radar-collisions"  # a pair of live sessions that overlap (``records.Collision``)
SIGHTINGS = "radar-sessions"  # a live session's diff (``records.Sighting``)
