"""The hand-over between the scheduler and the workflow: one attempt at one task.

The scheduler owns the queue, capacity, claims, retries and merging; the workflow owns what
happens inside one attempt (the phases, their CLIs, handoffs, the orchestrator's commit and the
verify commands). The scheduler builds a ``TaskRun``, awaits ``run_workflow(run)`` and acts on
the ``WorkflowResult``: merge it, park it, retry it or fail it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from pathlib import Path
from typing import Protocol

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.events import Event
from orchestrator.locks.manager import LockManager
from orchestrator.models import PhaseRecord
from orchestrator.plugins.host import PluginHost
from orchestrator.runner.phase_call import PhaseCall
from orchestrator.sandbox.commands import SessionSide
from orchestrator.spend.gate import SpendGate
from orchestrator.state.carried import Carrier
from orchestrator.state.context import BusyFile, BusyRead
from orchestrator.state.protocol import StateStore
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["OpenedTools", "PhaseTools", "TaskRun", "WorkflowFn", "WorkflowResult", "WorkflowStatus"]


class OpenedTools(Protocol):
    """One phase's council tools, opened (``PhaseTools.open``)."""

    def serving(self, call: PhaseCall) -> AbstractAsyncContextManager[PhaseCall]:
        """While the CLI runs: ``call`` in, the call with the session's MCP server out."""
        ...

    def remove(self) -> None:
        """After the CLI: what ``open`` made, gone. Blocking."""
        ...


class PhaseTools(Protocol):
    """The council's own tools for each phase's CLI: opened before it (``open``, blocking:
    the caller runs it in a worker-thread call with its other blocking work then)."""

    def open(self) -> OpenedTools: ...


@dataclass
class TaskRun:
    """Everything one attempt needs. The worktree exists and the claim is held."""

    config: RunConfig
    task: TaskConfig
    session: SessionWorktree  # the attempt's worktree and branch
    adapter: str  # the adapter chosen for this attempt (a phase's own adapter may override)
    claim_token: int  # fencing token: every state write of this attempt carries it
    store: StateStore
    worktrees: WorktreeManager
    locks: LockManager
    plugins: PluginHost
    log_dir: Path
    home_root: Path  # private HOMEs live below, one per task, adapter and phase (stable across
    # attempts, so a resumed conversation finds the CLI's own session files)
    cancel: anyio.Event = field(default_factory=anyio.Event)
    on_event: Callable[[Event], None] | None = None
    lock_owner: str | None = None  # who file locks are taken for (None: the session); the
    # candidates of a council task share one owner, so they never wait for each other
    on_phase_end: Callable[[], Awaitable[None]] | None = None  # after each phase's work is
    # saved (a team publishes the branch then); must not raise
    on_files: Callable[[Sequence[str]], Awaitable[None]] | None = None  # files the attempt now
    # owns or changes (the plan's once locked, the build's changed ones): the scheduler puts
    # them in the session context, which the other sessions' prompts name
    # The build's changed files as that same session-context write, handed back for the
    # phase's completion to carry in its own store call (``state.carried``); None: the
    # workflow reports them through ``on_files`` after it.
    carry_files: Callable[[Sequence[str]], Awaitable[Carrier]] | None = None
    # Records of the run's features its phase's completion carries (the radar's first
    # sighting), asked just before it; None: none.
    carry_phase_end: Callable[[], Sequence[Carrier]] | None = None
    note: str | None = None  # why the last attempt's build changed nothing: said to this build
    # What reviewers and checks said of the task's pull request: this build answers it.
    feedback: str | None = None
    spend: SpendGate | None = None  # every CLI call passes it: the ledger, budgets, quotas
    fresh_head: str | None = None  # the HEAD of a worktree just made at the base, that nothing
    # has run in yet (no setup commands): the first phase starts there, with nothing to commit
    # The council's own tools for each phase's CLI (``orchestrator.coordination``), served
    # while the CLI runs; None: none.
    tools: PhaseTools | None = None
    # Before each phase: the session's services it needs started (``orchestrator.services``,
    # ``ServiceFailed`` when one is not ready), and the session's side the phase's CLI and
    # checks get (its network, its variables); None: the run has no services.
    on_phase_start: Callable[[str], Awaitable[SessionSide | None]] | None = None
    side: SessionSide | None = None  # what ``on_phase_start`` last gave
    # The task's phase records as the attempt's claim found them (None: the workflow reads
    # them from the store).
    phases: Mapping[str, PhaseRecord] | None = None
    # The files the other sessions are on, read in the worker-thread call that forked the
    # attempt's worktree, for its first prompt (``carried_busy``), where nothing that can
    # wait (a service's start) comes between; None: that prompt reads them itself.
    busy_read: BusyRead | None = None

    async def phase_starting(self, phase: str) -> None:
        """Tell ``on_phase_start`` that ``phase`` starts; keep the side it gives."""
        if self.on_phase_start is not None:
            self.side = await self.on_phase_start(phase)

    async def files_reported(self, paths: Sequence[str]) -> None:
        """Tell ``on_files`` about files the attempt now owns or changes."""
        if self.on_files is not None and paths:
            await self.on_files(paths)

    async def files_carried(self, paths: Sequence[str]) -> Carrier | None:
        """``carry_files``' write of ``paths`` (None: none to carry, or no carrier)."""
        if self.carry_files is None or not paths:
            return None
        return await self.carry_files(paths)

    async def phase_carried(self, paths: Sequence[str]) -> list[Carrier]:
        """What a phase's completion carries: ``files_carried(paths)`` (a build's changed
        files), then ``carry_phase_end``'s."""
        files = await self.files_carried(paths)
        ending = self.carry_phase_end() if self.carry_phase_end is not None else ()
        return [*([files] if files is not None else []), *ending]

    async def phase_ended(self) -> None:
        """Tell ``on_phase_end`` that a phase's work is saved on the branch."""
        if self.on_phase_end is not None:
            await self.on_phase_end()

    def carried_busy(self) -> list[BusyFile] | None:
        """What ``busy_read`` found, once: the attempt's first prompt's (None after it, or
        when nothing was read)."""
        read, self.busy_read = self.busy_read, None
        return read.found if read is not None else None

    def take_fresh_head(self) -> str | None:
        """``fresh_head``, once: after the first phase starts, something has run."""
        head, self.fresh_head = self.fresh_head, None
        return head

    @property
    def lock_session(self) -> str:
        """The owner id the attempt's file locks are taken and released under."""
        return self.lock_owner or self.session.session_id


class WorkflowStatus(StrEnum):
    READY_TO_MERGE = "ready_to_merge"  # committed, non-empty, verified, approved
    FAILED = "failed"  # a phase failed for good (retryable says whether another attempt helps)
    PARKED = "parked"  # rate limited: resume the same conversation after retry_at
    HELD = "held"  # a phase's CLI call was not started: a budget (until raised) or a quota
    # (until retry_at); not a failure, nor an attempt at the work
    CANCELLED = "cancelled"


@dataclass
class WorkflowResult:
    status: WorkflowStatus
    phase: str | None = None  # the phase that decided the result
    message: str = ""
    retryable: bool = False
    outcome_kind: str | None = None  # the CLI outcome that decided it (OutcomeKind value)
    retry_at: datetime | None = None
    commit: str | None = None
    files_changed: list[str] = field(default_factory=list)
    usage: Usage | None = None
    phases_run: list[str] = field(default_factory=list)


WorkflowFn = Callable[[TaskRun], Awaitable[WorkflowResult]]
