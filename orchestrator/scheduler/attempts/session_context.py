"""The session context of the attempts in flight, kept current as they own files.

Each owner of file locks (an attempt's session, or the shared owner of a council task's
candidates) has one context in the store (``state.context``): its CLI, its task, the files it
holds locked and the files it reported changing. Every phase prompt names the files of the
other contexts (``workflow.busy_files``), so a CLI is told what another session is on, on this
workstation or, through a shared store, on another one.

- ``started``: the attempt holds its declared files and has its worktree; its context says so
  (a lone attempt's starts afresh: what an earlier attempt reported changing is over).
- ``changing``: the workflow reported files (the plan's, once locked; the build's changed
  ones); they are added, with whatever more the owner now holds locked.
- ``ended``: the owner's locks were released (the attempt ended or landed; a council task's
  candidates are all over); its context goes with them.
- ``swept``: a task's claim lapsed under an orchestrator that is gone (``sweeper``); the
  context its session left goes, if it still is that task's.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import Services
from orchestrator.state.context import ContextManager, WorkStatus

__all__ = ["SessionContextFeed"]


class SessionContextFeed:
    def __init__(self, services: Services) -> None:
        self._locks = services.locks
        self.contexts = ContextManager(services.store, services.locks.project_dir)

    async def started(self, attempt: Attempt, owner: str) -> None:
        fields: dict[str, object] = {
            "cli": attempt.adapter,
            "task": attempt.worktree_task,
            "status": WorkStatus.WORKING,
            "files_locked": self._held(owner),
        }
        if attempt.group is None:
            fields["files_changing"] = []
        await self.contexts.update_context(owner, **fields)

    async def changing(self, owner: str, paths: Sequence[str]) -> None:
        await self.contexts.add_files(owner, locked=self._held(owner), changing=paths)

    async def ended(self, owner: str) -> None:
        await self.contexts.remove_context(owner)

    async def swept(self, task_id: str, session: str) -> None:
        await self.contexts.remove_context(session, task=task_id)

    def _held(self, owner: str) -> list[str]:
        return [grant.path for grant in self._locks.held(owner)]
