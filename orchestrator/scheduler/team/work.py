"""An attempt's git work in a team: a fresh base to fork from, the branch published at phase
boundaries, and another workstation's committed work taken over.

- **Fresh base.** Before a new worktree forks, the remote's base is fetched (at most once a
  second for all the attempts that start together), so new work starts from what the team
  has landed, not from what this clone last saw.
- **Publish.** After every phase (and whenever an attempt stops early with its work saved),
  the session's branch is pushed to the remote as ``refs/council/branches/<branch>``
  (``git.publish``: a lease, never a force; the refs read from git's files, so the push and
  the record of what was pushed are its only git processes). A failure is a warning, never
  the attempt's end: the work is still committed on this clone's branch.
- **No secret leaves.** Each publication (and the rescue ref a removed worktree leaves,
  ``writes``) is checked first by the merge queue's secret gate (``merge.push_gate``: what
  the push would bring that the remote has, the gate's scan, budget and clean tips). A hit
  pushes nothing: the work is masked in every local ref as a landing's hit leaves it, the
  ``task.publish_failed`` warning names where (never the value), the attempt is stopped
  before its next phase and fails, not retried, ``metadata.outcome: secret_in_work``
  (``attempt.secret``, read by the runner). A check past its budget pushes nothing either
  and says so; the attempt goes on, its work on this clone alone, and its landing's own
  check decides.
- **Files.** An attempt's declared files are owned in the team's registry too
  (``locks.team_files``), so two workstations never build on one file at once; a file a live
  attempt elsewhere owns sends the task back to the queue, like a local lock does.
- **Take over.** A task whose last attempt ran on another workstation names that attempt's
  worktree session and branch in its record; this clone fetches the published branch and
  checks it out under the same session, so the phases already recorded complete are really
  there. When nothing was published (the other workstation died before its first phase
  ended), or this clone's own branch of that name has other commits, the attempt starts
  afresh from the base: the other work stays on the remote, never overwritten.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path

import anyio

from orchestrator.errors import CouncilError, CredentialInWork, SecretInHistory, SecretScanLate
from orchestrator.events.tasks import TaskPublishFailed, TaskTakenOver, TaskTakeoverRefused
from orchestrator.git.publish import fetch_branch, publish_branch
from orchestrator.locks.team_files import Owned, TeamFiles
from orchestrator.merge.push_gate import PushGate
from orchestrator.models import TaskState
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext
from orchestrator.state.team import Team
from orchestrator.worktrees.models import SessionWorktree

__all__ = ["TeamWork"]

log = logging.getLogger(__name__)

_FETCH_EVERY = 1.0  # seconds: attempts starting within this share one fetch of the base


class TeamWork:
    def __init__(self, run: RunContext, team: Team) -> None:
        self._run = run
        self._team = team
        self._files = TeamFiles(run.services.store)
        self._fetched = -_FETCH_EVERY
        self._fetching = anyio.Lock()
        self._common_dir: Path | None = None  # where git's files tell the refs to publish
        self._gate: PushGate | None = None  # the secret gate's check before each push

    async def fresh_base(self) -> None:
        """Fetch the remote's base unless that was done in the last second."""
        async with self._fetching:
            if time.monotonic() - self._fetched < _FETCH_EVERY:
                return
            try:
                await self._run.services.merges.refresh()
            except CouncilError as exc:
                # Forking from the base as last fetched is still right, only less fresh.
                log.warning("cannot fetch the team's base: %s", exc)
            self._fetched = time.monotonic()

    async def take_files(self, attempt: Attempt) -> Owned | None:
        """Own the attempt's declared files across the team; the live owner refusing one."""
        if attempt.group is not None or not attempt.files:
            return None  # a council's candidates share their files (one lock owner)
        return await self._files.take(
            attempt.key, attempt.token, self._run.holder, sorted(attempt.files)
        )

    async def release_files(self, attempt: Attempt, token: int) -> None:
        if attempt.group is None and attempt.files and token:
            await self._files.release(attempt.key, token, attempt.files)

    async def publish(self, attempt: Attempt) -> str | None:
        """Push the attempt's branch to the remote once the secret gate found nothing in
        what it brings (module doc); a warning event when it is not pushed. The commit the
        remote now has for it (pushed now or before), None when it was not pushed."""
        if attempt.session is None or attempt.lost or attempt.secret is not None:
            return None
        services = self._run.services
        branch, remote = attempt.session.branch, self._team.remote
        try:
            if self._common_dir is None:
                self._common_dir = (await services.worktrees.layout()).common_dir
            if self._gate is None:
                self._gate = services.merges.lending.push_gate(remote, self._common_dir)
            return await publish_branch(
                services.merges.git, remote, branch, self._common_dir, self._gate.check
            )
        except SecretScanLate as exc:  # unread is never clean: nothing pushed, work kept here
            await self._not_pushed(attempt, branch, exc)
        except CredentialInWork as exc:  # nobody declared it: the same, and failed when found
            if exc.late is None:
                attempt.secret = exc
                attempt.cancel.set()
            await self._not_pushed(attempt, branch, exc)
        except SecretInHistory as exc:
            attempt.secret = exc  # failed, not retried (the runner reads it)
            attempt.cancel.set()  # no next phase on this work
            await self._not_pushed(attempt, branch, exc)
        except CouncilError as exc:
            await self._run.events.emit(
                TaskPublishFailed(task_id=attempt.key, branch=branch, error=str(exc))
            )
        return None

    async def _not_pushed(self, attempt: Attempt, branch: str, exc: SecretInHistory) -> None:
        error = f"not pushed to {self._team.remote}, kept on this clone's branch: {exc}"
        log.warning("task %s: %s", attempt.key, error)
        await self._run.events.emit(
            TaskPublishFailed(task_id=attempt.key, branch=branch, error=error)
        )

    async def take_over(
        self, attempt: Attempt, session_id: str, state: TaskState
    ) -> SessionWorktree | None:
        """The other workstation's worktree session continued here, or None to start afresh."""
        branch = state.branch
        if not branch:
            return None
        services = self._run.services
        try:
            tip = await fetch_branch(services.merges.git, self._team.remote, branch)
            if tip is None:
                return None
            adopted = await services.worktrees.adopt_session_worktree(
                session_id, attempt.adapter, attempt.worktree_task, branch
            )
        except CouncilError as exc:
            await self._run.events.emit(
                TaskTakeoverRefused(task_id=attempt.key, branch=branch, error=str(exc))
            )
            return None
        await self._run.events.emit(
            TaskTakenOver(task_id=attempt.key, branch=branch, tip=tip, session=session_id)
        )
        return adopted
