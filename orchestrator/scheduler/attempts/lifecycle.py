"""Where an attempt is in its life: one stage, moved only along the allowed transitions.

An attempt (``attempt.Attempt``) goes::

    CLAIMING -> RUNNING -> SETTLING -> MERGING -> LANDED -> RELEASING -> ENDED

- ``CLAIMING``: dispatched, its claim, locks and worktree being taken (a relanding starts
  here with its claim already taken); one that never gets its claim (someone else holds it,
  the task ended meanwhile) ends ``ENDED`` straight from here;
- ``RUNNING``: its claim held, the CLI works (a council step: its judge compares); a result
  that is not ready to merge is settled here, its slot still held (``runner``);
- ``SETTLING``: the CLI's work is over and its slot given back (``InFlight.cli_done``; a
  relanding, which has no CLI work, comes here from ``CLAIMING``): its ready result is being
  settled (merged, kept for a council's comparison, or cancelled);
- ``MERGING``: the task was written ``merging``: its merge had to wait (``lander``);
- ``LANDED``: merged into the base; its branch may be deleted at any moment;
- ``RELEASING``: its claim is being given back (``writes.release``): a renewal failing now
  is no loss. A release the store did not take goes back to the stage it came from
  (``release_failed``), so it may be released again;
- ``ENDED``: its claim given back: it writes nothing more.

``LOST``: the claim lapsed (swept, fenced, the store away when its end was to be written):
the attempt writes nothing more, the sweeper owns the task now. It is reachable from every
stage but ``ENDED`` (an ended attempt has no claim to lose) and is final. A lost attempt's
coroutine still finishes what it was doing (gives its slot back, tries its release, which
the store refuses): those moves are still checked against the table and kept as its
*progress*, so the facts its readers ask (its slot free, its branch landed, ``merging``
written) stay true, but its stage stays ``LOST``.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

__all__ = ["LIVE", "MOVES", "IllegalMove", "Lifecycle", "Stage"]


class Stage(StrEnum):
    CLAIMING = "claiming"
    RUNNING = "running"
    SETTLING = "settling"
    MERGING = "merging"
    LANDED = "landed"
    RELEASING = "releasing"
    ENDED = "ended"
    LOST = "lost"


# The stages an attempt may lose its claim in.
LIVE = frozenset(
    {
        Stage.CLAIMING,
        Stage.RUNNING,
        Stage.SETTLING,
        Stage.MERGING,
        Stage.LANDED,
        Stage.RELEASING,
    }
)

# Every allowed move (besides ``Lifecycle.release_failed``, back from ``RELEASING``).
MOVES: Mapping[Stage, frozenset[Stage]] = {
    Stage.CLAIMING: frozenset(
        {Stage.RUNNING, Stage.SETTLING, Stage.RELEASING, Stage.ENDED, Stage.LOST}
    ),
    Stage.RUNNING: frozenset({Stage.SETTLING, Stage.RELEASING, Stage.LOST}),
    Stage.SETTLING: frozenset({Stage.MERGING, Stage.LANDED, Stage.RELEASING, Stage.LOST}),
    Stage.MERGING: frozenset({Stage.LANDED, Stage.RELEASING, Stage.LOST}),
    Stage.LANDED: frozenset({Stage.RELEASING, Stage.LOST}),
    Stage.RELEASING: frozenset({Stage.ENDED, Stage.LOST}),
    Stage.ENDED: frozenset(),
    Stage.LOST: frozenset({Stage.LOST}),  # a lapse seen twice (the sweep, then a write)
}


class IllegalMove(RuntimeError):
    """A move the lifecycle's table does not allow: a bug in the scheduler, never a task's
    failure (so no ``CouncilError``, which the attempt's settling would take for one)."""

    def __init__(self, task_id: str, was: Stage, to: Stage, why: str = "") -> None:
        allowed = ", ".join(sorted(MOVES[was])) or "nothing"
        super().__init__(
            f"attempt of task {task_id!r}: no move from {was} to {to}"
            f" ({why or f'from {was} the table allows {allowed}'})"
        )
        self.task_id = task_id
        self.was = was
        self.to = to


class Lifecycle:
    """One attempt's stage and the stages it has passed (module doc)."""

    __slots__ = ("_before_release", "_lost", "_passed", "_progress", "task_id")

    def __init__(self, task_id: str) -> None:
        self.task_id = task_id
        self._progress = Stage.CLAIMING
        self._lost = False
        self._passed = {Stage.CLAIMING}
        self._before_release = Stage.CLAIMING

    @property
    def stage(self) -> Stage:
        return Stage.LOST if self._lost else self._progress

    @property
    def progress(self) -> Stage:
        """Where the attempt's own steps have taken it (its stage, unless it is ``LOST``)."""
        return self._progress

    def passed(self, stage: Stage) -> bool:
        """The attempt has been in ``stage`` (or is in it now)."""
        return stage in self._passed

    def move(self, to: Stage) -> None:
        """Move to ``to``; ``IllegalMove`` (naming both stages and the task) if the table
        does not allow it. A lost attempt's moves are checked from its progress."""
        if to is Stage.LOST:
            was = self.stage
            if to not in MOVES[was]:
                raise IllegalMove(self.task_id, was, to)
            self._lost = True
            self._passed.add(to)
            return
        if to not in MOVES[self._progress]:
            raise IllegalMove(self.task_id, self._progress, to)
        if to is Stage.RELEASING:
            self._before_release = self._progress
        self._progress = to
        self._passed.add(to)

    def release_failed(self) -> None:
        """The release did not happen (the store refused or could not be reached): back to
        the stage the attempt was releasing from."""
        if self._progress is not Stage.RELEASING:
            raise IllegalMove(
                self.task_id, self._progress, self._before_release, "it is not releasing"
            )
        self._progress = self._before_release
