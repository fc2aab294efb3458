"""The run config's ``radar:`` section: the continuous collision radar (``orchestrator.radar``).

::

    radar: warn                   # warn | sequence | off (shorthand for {mode: ...})
    radar:
      mode: sequence              # warn, and hold a queued task whose files a collision is on
      interval: 30                # seconds between looks at the worktrees' uncommitted diffs

``warn`` (the default): every pair of live sessions is compared at each phase commit and every
``interval`` seconds; the sessions that overlap are told at their next phase, ``council status``
marks them and ``radar.collision`` / ``radar.resolved`` are emitted. ``sequence`` does that and
holds a task not yet started whose declared ``files:`` a live collision is on, until it
resolves. ``off``: no radar at all.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, model_validator

from orchestrator.config.fields import Section

__all__ = ["RadarConfig", "RadarMode"]

RadarMode = Literal["warn", "sequence", "off"]


class RadarConfig(Section):
    """The collision radar (``orchestrator.radar``)."""

    mode: RadarMode = Field(
        default="warn",
        description="warn: overlapping sessions are told, marked in `council status` and "
        "emitted as radar.collision; sequence: also hold a queued task whose declared files a "
        "live collision is on; off: no radar",
    )
    interval: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="seconds between the radar's looks at the live worktrees' uncommitted "
        "diffs (a phase commit is looked at when it happens)",
    )

    @model_validator(mode="before")
    @classmethod
    def _shorthand(cls, value: Any) -> Any:
        return {"mode": value} if isinstance(value, str) else value

    @property
    def on(self) -> bool:
        return self.mode != "off"
