"""The session context of the attempts in flight, kept current as they own files.

Each owner of file locks (an attempt's session, or the shared owner of a council task's
candidates) has one context in the store (``state.context``): its CLI, its task, the files it
holds locked and the files it reported changing. Every phase prompt names the files of the
other contexts (``workflow.busy_files``), so a CLI is told what another session is on, on this
workstation or, through a shared store, on another one.

- ``started``: the attempt holds its declared files and has its worktree; its context says so
  (a lone attempt's starts afresh: what an earlier attempt reported changing is over). A lone
  attempt in a session just made that holds no file yet writes nothing then: a context
  without a file is nothing a prompt or the desk reads, and no earlier one can be there to
  reset; it is written with its first files (one write where there were two).
- ``changing``: the workflow reported files (the plan's, once locked; the build's changed
  ones); they are added, with whatever more the owner now holds locked. ``changing_carried``
  is the same write handed back for the build's completion to carry in its store call.
- ``ended``: the owner's locks were released (the attempt ended or landed; a council task's
  candidates are all over); its context goes with them (none was written: nothing to do).
  ``ending`` is the same end with the deletion handed back, for a landing to make in the
  worktree removal's own store call (``AttemptWrites.release_locks(context_later=True)``).
- ``swept``: a task's claim lapsed under an orchestrator that is gone (``sweeper``); the
  context its session left goes, if it still is that task's.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import Services
from orchestrator.state.carried import Carrier
from orchestrator.state.context import ContextManager, WorkStatus
from orchestrator.state.deletions import Deletion

__all__ = ["SessionContextFeed"]


class SessionContextFeed:
    def __init__(self, services: Services) -> None:
        self._locks = services.locks
        self.contexts = ContextManager(services.store, services.locks.project_dir)
        # Owner -> its started context, not written yet (``started``): the first files it
        # reports write it, fields and files in one write; an end without any writes nothing.
        self._pending: dict[str, dict[str, object]] = {}

    async def started(self, attempt: Attempt, owner: str, *, new: bool = False) -> None:
        """``new``: ``owner`` is a session id drawn just now, which no context can name yet."""
        fields: dict[str, object] = {
            "cli": attempt.adapter,
            "task": attempt.worktree_task,
            "status": WorkStatus.WORKING,
            "files_locked": self._held(owner),
        }
        if attempt.group is None:
            fields["files_changing"] = []
            if new and not fields["files_locked"]:
                # Nothing another session's prompt or the desk would read (no file), and no
                # context of an earlier attempt to reset: written with its first files.
                self._pending[owner] = fields
                return
        await self.contexts.update_context(owner, **fields)

    async def changing(self, owner: str, paths: Sequence[str]) -> None:
        pending = self._pending.pop(owner, None)
        await self.contexts.add_files(
            owner, locked=self._held(owner), changing=paths, fields=pending
        )

    async def changing_carried(self, owner: str, paths: Sequence[str]) -> Carrier:
        """``changing``, handed back for another store call to carry (``state.carried``)."""
        pending = self._pending.pop(owner, None)
        return await self.contexts.files_carried(
            owner, locked=self._held(owner), changing=paths, fields=pending
        )

    async def ended(self, owner: str) -> None:
        if self._pending.pop(owner, None) is not None:
            return  # never written: nothing to remove
        await self.contexts.remove_context(owner)

    def ending(self, owner: str) -> Deletion | None:
        """``ended``, its deletion handed back for a store call of the caller's (None: no
        context was written, nothing to delete)."""
        if self._pending.pop(owner, None) is not None:
            return None
        return self.contexts.removal(owner)

    async def swept(self, task_id: str, session: str) -> None:
        await self.contexts.remove_context(session, task=task_id)

    def _held(self, owner: str) -> list[str]:
        return [grant.path for grant in self._locks.held(owner)]
