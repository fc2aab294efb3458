"""Hypothesis drives one task record through updates, stale writes and damage, against a model.

The model predicts exactly which version and content the store must show: updates bump the
version by one, a stale ``expected_version`` changes nothing, and a damaged record comes back
as its newest intact history version under a version above any handed out before.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path
from typing import Any

import anyio
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from orchestrator.errors import StateCorrupted, VersionConflict
from orchestrator.state import FileStateStore

HISTORY = 10


class RecordMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="council-stateful-"))
        self.store = FileStateStore(self.dir)
        self.current: tuple[int, int] | None = None  # (version, priority)
        self.history: dict[int, tuple[int, bool]] = {}  # version -> (priority, intact)
        self.shared = False  # current's bytes are also a history entry (after a recovery)
        self.damaged = False
        self.broken = False
        self.highest_seen = 0

    def teardown(self) -> None:
        anyio.run(self.store.aclose)
        shutil.rmtree(self.dir, ignore_errors=True)

    @property
    def path(self) -> Path:
        return self.dir / "tasks" / "t1" / "current.json"

    def _prune(self) -> None:
        for version in sorted(self.history)[:-HISTORY]:
            del self.history[version]

    def _settle(self) -> None:
        """The recovery the store performs before any operation on a damaged record."""
        if not self.damaged:
            return
        intact = [v for v, (_, ok) in self.history.items() if ok]
        if not intact:
            self.broken = True
            return
        source = self.history[max(intact)][0]
        new_version = max(self.history) + 2
        self.history[new_version] = (source, True)
        self._prune()
        self.current = (new_version, source)
        self.shared = True
        self.damaged = False

    def _check(self, version: int, priority: int) -> None:
        assert self.current == (version, priority)
        assert version >= self.highest_seen
        self.highest_seen = version

    @precondition(lambda self: not self.broken)
    @rule(priority=st.integers(0, 1000), mode=st.sampled_from(["plain", "expected", "stale"]))
    def update(self, priority: int, mode: str) -> None:
        self._settle()
        if self.broken:
            return
        version = self.current[0] if self.current else 0
        expected: Any = {"plain": None, "expected": version, "stale": version + 1}[mode]

        async def run() -> Any:
            return await self.store.update_task_state("t1", {"priority": priority}, expected)

        if mode == "stale":
            try:
                anyio.run(run)
            except VersionConflict:
                return
            raise AssertionError("a stale expected_version was accepted")
        task = anyio.run(run)
        if self.current is not None:
            self.history.setdefault(self.current[0], (self.current[1], True))
        self.current = (version + 1, priority)
        self.shared = False
        self._prune()
        self._check(task.version, task.priority)

    @precondition(lambda self: self.current is not None and not self.broken and not self.damaged)
    @rule(where=st.floats(0, 1, exclude_max=True), truncate=st.booleans())
    def damage(self, where: float, truncate: bool) -> None:
        data = bytearray(self.path.read_bytes())
        offset = int(where * len(data))
        if truncate:
            del data[offset:]
        else:
            data[offset] ^= 0x04
        self.path.write_bytes(bytes(data))  # in place: a history link to it is damaged too
        self.damaged = True
        if self.shared:
            assert self.current is not None
            self.history[self.current[0]] = (self.history[self.current[0]][0], False)

    @rule()
    def read(self) -> None:
        self._settle()
        if self.broken:
            try:
                anyio.run(self.store.get_task_state, "t1")
            except StateCorrupted:
                return
            raise AssertionError("a damaged record without history was read")
        task = anyio.run(self.store.get_task_state, "t1")
        if self.current is None:
            assert task is None
        else:
            assert task is not None
            self._check(task.version, task.priority)

    @invariant()
    def history_stays_bounded(self) -> None:
        directory = self.dir / "tasks" / "t1"
        if directory.exists():
            assert len(list(directory.glob("v*.json"))) <= HISTORY


RecordMachine.TestCase.settings = settings(max_examples=40, stateful_step_count=30, deadline=None)
TestRecordMachine = RecordMachine.TestCase
