"""Slot accounting for the scheduler: how many sessions run, overall, per adapter, per phase.

``Slots`` counts the attempts this scheduler runs. An attempt takes a slot when it is
dispatched (with the adapter it runs on and the phase it starts in) and gives it back when its
CLI work ends; a merge that waits afterwards holds no slot, since no CLI runs for it. The
global and per-adapter limits are exact: nothing is dispatched beyond them. The phase of a
running attempt is what the workflow last reported (``move``), so the per-phase limit is
enforced at dispatch against the phases attempts are in now; an attempt moving into a full
phase is not stopped (only the workflow could wait there).
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from orchestrator.config.sections import CapacityConfig

__all__ = ["Slots"]


@dataclass
class _Slot:
    adapter: str
    phase: str | None


class Slots:
    def __init__(self, capacity: CapacityConfig) -> None:
        self.capacity = capacity
        self._slots: dict[str, _Slot] = {}

    def __len__(self) -> int:
        return len(self._slots)

    def full(self) -> bool:
        """No global slot left: nothing more can be dispatched this tick."""
        return len(self._slots) >= self.capacity.sessions

    def free(self, adapter: str, phase: str | None) -> bool:
        """May one more attempt start on ``adapter`` in ``phase``?"""
        if self.full():
            return False
        limit = self.capacity.per_adapter.get(adapter)
        if limit is not None and self.by_adapter().get(adapter, 0) >= limit:
            return False
        if phase is None or phase not in self.capacity.per_phase:
            return True
        return self.by_phase().get(phase, 0) < self.capacity.per_phase[phase]

    def take(self, key: str, adapter: str, phase: str | None) -> None:
        if key in self._slots:
            raise ValueError(f"{key!r} already holds a slot")
        self._slots[key] = _Slot(adapter, phase)

    def move(self, key: str, phase: str) -> None:
        """The workflow reported that attempt ``key`` is now in ``phase``."""
        slot = self._slots.get(key)
        if slot is not None:
            slot.phase = phase

    def give_back(self, key: str) -> None:
        self._slots.pop(key, None)

    def by_adapter(self) -> Counter[str]:
        return Counter(slot.adapter for slot in self._slots.values())

    def by_phase(self) -> Counter[str]:
        return Counter(slot.phase for slot in self._slots.values() if slot.phase)
