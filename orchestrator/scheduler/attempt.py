"""What an attempt is and the fenced store writes every part of its lifecycle makes.

``Attempt`` is one attempt in flight; ``AttemptBase`` declares what the ``Scheduler`` sets on
itself and holds the writes made with the attempt's fencing token (a write after the claim was
swept marks the attempt ``lost`` and nothing more is written). The lifecycle itself is in
``scheduler_attempt`` (claim to workflow) and ``scheduler_settle`` (result to merge).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import anyio

from orchestrator.adapter import Usage
from orchestrator.config.run import RunConfig
from orchestrator.config.task import TaskConfig
from orchestrator.errors import StaleClaim, WorkspaceError
from orchestrator.events import Event
from orchestrator.locks.manager import LockManager
from orchestrator.merge.queue import MergeQueue
from orchestrator.models import ClaimStatus, TaskState, TaskStatus
from orchestrator.plugins.host import PluginHost
from orchestrator.retry import RetryPolicy
from orchestrator.scheduler.candidates import (
    group_lock_owner,
)
from orchestrator.scheduler.capacity import Slots
from orchestrator.scheduler.parks import ParkPolicy
from orchestrator.state.protocol import StateStore
from orchestrator.workflow.task_run import WorkflowFn, WorkflowResult
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["Attempt", "AttemptBase", "Services"]

log = logging.getLogger(__name__)

FAILURES = "failures"  # metadata: failed attempts so far (what RetryPolicy.decide counts)
WORKTREE = "worktree_session"  # metadata: the session id of the task's kept worktree
WORKTREE_LOSSES = "worktree_losses"  # metadata: attempts requeued because it was deleted
RESOLVE_ROUNDS = "resolve_rounds"  # metadata: conflicts answered by building again on the base
MAX_RESOLVE_ROUNDS = 1
USAGE = "usage"  # metadata: tokens and cost summed over attempts
_LOCK_TIMEOUT = 0.5
_MERGE_RECHECK = 0.5  # seconds between merges retried while the base's checkout is dirty


@dataclass
class Services:
    """What the scheduler works with; the ``Council`` facade builds and closes them."""

    config: RunConfig
    store: StateStore
    worktrees: WorktreeManager
    locks: LockManager
    merges: MergeQueue
    plugins: PluginHost
    log_dir: Path
    home_root: Path


@dataclass(eq=False)
class Attempt:
    """One attempt in flight, as this scheduler sees it."""

    task: TaskConfig
    adapter: str
    phase: str | None
    seq: int  # dispatch order: the earlier of two conflicting branches lands first
    files: frozenset[str]
    started: float = field(default_factory=time.monotonic)
    renewed: float = field(default_factory=time.monotonic)
    token: int = 0
    session: SessionWorktree | None = None
    lost: bool = False  # the claim lapsed: this attempt may not write any more
    releasing: bool = False  # its claim is being released: a renewal failing now is no loss
    landed: bool = False  # merged into the base: its branch may be deleted at any moment
    timed_out: bool = False
    files_changed: frozenset[str] = frozenset()
    last_message: str = ""
    slot_free: bool = False  # the CLI work is over; the attempt is settling or merging
    group: str | None = None  # a council candidate: the council task it is a candidate of
    picking: bool = False  # the council step of a council task (compare, merge the winner)
    cancel_requested: bool = False  # someone asked for the task to be cancelled
    worktree_gone: bool = False  # its worktree was deleted under it (seen by the reconcile)
    locks_released: bool = False  # the session's locks were released (the attempt is over)
    written: TaskState | None = None  # the task as this attempt's last fenced write left it
    merging_written: bool = False  # the task was written ``merging`` (its merge had to wait)
    usage: Usage | None = None  # the attempt's usage, not yet added to the task's total
    cancel: anyio.Event = field(default_factory=anyio.Event)
    finished: anyio.Event = field(default_factory=anyio.Event)

    @property
    def key(self) -> str:
        return self.task.id

    @property
    def worktree_task(self) -> str:
        """The task id the worktree and branch are made for (a candidate's council task)."""
        return self.group or self.task.id

    def lock_owner(self, session_id: str) -> str:
        """Who the attempt's file locks are held by."""
        return group_lock_owner(self.group) if self.group else session_id

    def touches(self) -> frozenset[str]:
        return self.files | self.files_changed


class AttemptBase:
    """The state and store writes shared by the attempt, settle and council halves."""

    services: Services
    workflow: WorkflowFn
    policy: RetryPolicy
    parks: ParkPolicy
    slots: Slots
    holder: str
    running: dict[str, Attempt]
    parked: dict[str, datetime]
    rate_limited_since: dict[str, datetime]  # adapter -> its first park in a row
    stopping: bool
    killed: bool
    tasks: dict[str, TaskConfig]
    listeners: list[Callable[[Event], None]]

    def council_tasks(self) -> dict[str, TaskConfig]:
        """The council tasks of this run, by id."""
        return {task.id: task for task in self.tasks.values() if task.council}

    async def _retire_worktree(self, attempt: Attempt) -> None:
        if attempt.session is None:
            return
        try:
            await self.services.worktrees.remove_session_worktree(attempt.session)
        except WorkspaceError as exc:  # the branch keeps the work either way
            log.warning("could not remove the worktree of %s: %s", attempt.key, exc)

    async def _requeue(self, attempt: Attempt, state: TaskState | None, why: str) -> bool:
        """Give the task back to the queue as it was (nothing counted); False, for callers."""
        if attempt.token and not attempt.lost:
            await self._release(
                attempt, ClaimStatus.ABANDONED, {"status": TaskStatus.QUEUED, "current_phase": None}
            )
            await self._emit("task.requeued", {"task_id": attempt.key, "reason": why})
        return False

    # -- store writes, all fenced ---------------------------------------------------------

    def _where(self, attempt: Attempt) -> dict[str, Any]:
        """The attempt's branch and worktree, written with every write that settles it (the
        workflow's phase records carry them too; ``_setup`` writes no extra record for them)."""
        if attempt.session is None:
            return {}
        return {"branch": attempt.session.branch, "worktree": str(attempt.session.path)}

    async def _write(self, attempt: Attempt, updates: dict[str, Any]) -> TaskState:
        try:
            state = await self.services.store.update_task_state(
                attempt.key, {**self._where(attempt), **updates}, fencing_token=attempt.token
            )
        except StaleClaim:
            attempt.lost = True
            raise
        attempt.written = state
        return state

    async def _release(
        self, attempt: Attempt, status: ClaimStatus, updates: dict[str, Any]
    ) -> None:
        attempt.releasing = True
        fields = {**self._where(attempt), **updates}
        try:
            await self.services.store.release_claim(attempt.key, attempt.token, status, fields)
        except StaleClaim:
            attempt.lost = True  # swept meanwhile: the sweeper has settled the task
            return
        finally:
            attempt.releasing = False
        attempt.token = 0

    async def _release_locks(self, attempt: Attempt) -> None:
        # Once is enough: after its settling step released them, an attempt takes no more.
        if attempt.session is not None and not attempt.locks_released:
            await self.services.locks.release_all_session_locks(attempt.session.session_id)
            attempt.locks_released = True

    async def _add_usage(self, attempt: Attempt, result: WorkflowResult) -> None:
        """Add the attempt's usage to the task's total (a write of its own)."""
        if result.usage is None:
            return
        state = await self.services.store.get_task_state(attempt.key)
        if state is None:
            return
        attempt.usage = result.usage
        await self._write(attempt, {"metadata": self._with_usage(attempt, state.metadata)})

    def _with_usage(self, attempt: Attempt, metadata: dict[str, Any]) -> dict[str, Any]:
        """``metadata`` with ``attempt.usage`` added to the task's total; the usage is then
        spent (the caller writes it), so it is never counted twice."""
        usage, attempt.usage = attempt.usage, None
        if usage is None:
            return dict(metadata)
        total = dict(metadata.get(USAGE) or {})
        for name, value in usage.model_dump().items():
            if value is not None:
                total[name] = (total.get(name) or 0) + value
        return {**metadata, USAGE: total}

    async def _emit(self, kind: str, data: dict[str, Any], level: str = "info") -> None:
        await self.services.store.emit(Event(type=kind, data=data, level=level))
