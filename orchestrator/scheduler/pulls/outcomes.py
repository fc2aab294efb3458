"""What a followed pull request's end writes, and what it waits for: ``PullOutcomes``.

- ``merged``: merged on the forge (by council or a person): the remote's base is fetched and
  the work confirmed on it (a person's squash or rebase: the base's tip seen after it), then the
  task is ``done`` with ``merged_commit`` and ``pull.merged``; not seen there yet, it waits.
- ``closed``: closed unmerged: the task ends ``failed`` (closed by a human), ``pull.closed``.
- ``not_merged``: council's merge refused: the pull request read again (merged or closed
  meanwhile ends it as above); a moved head is looked at again next pass; a conflict with the
  moved base goes through a resolve round (``resolve_round``), once, then ends ``conflict``
  with the pull request left open; a protection rule waits on a person.
- ``note``: what the pull request waits for, recorded when it changed.

``resolve_round`` is also the write of ``scheduler.retry.request_rebase`` (a person's
``/council rebase``). Every write is compare-and-set on the version the pass read
(``write``; ``VersionConflict``: the follower reads again).
"""

from __future__ import annotations

import logging
from typing import Any

from orchestrator.events.merge import MergeResolveRound
from orchestrator.events.pulls import PullClosed, PullMerged, PullNotMerged
from orchestrator.events.tasks import TaskFailed
from orchestrator.forge.base import Forge, PullRequest
from orchestrator.models import TaskState, TaskStatus, utcnow
from orchestrator.scheduler.attempts.attempt import MAX_RESOLVE_ROUNDS, RESOLVE_ROUNDS, WORKTREE
from orchestrator.scheduler.context import RunContext, Services
from orchestrator.scheduler.pulls.landing import PULL, PULL_REMOTE

__all__ = ["PullOutcomes", "pull_remote", "resolve_round", "write"]

log = logging.getLogger(__name__)


def pull_remote(services: Services) -> str:
    """Where the run's pull request heads are pushed: the team's remote, else ``origin``."""
    return services.team.remote if services.team is not None else PULL_REMOTE


async def resolve_round(
    services: Services, state: TaskState, seen: dict[str, Any], round_: int, why: str
) -> TaskState:
    """Send the task whose pull request ``seen`` (as recorded: its number, its ``head``)
    is open back to the queue for resolve round ``round_``, as a merge-queue conflict's
    (``Lander``): its next attempt forks a fresh worktree from the base as the remote has it
    now (fetched first), builds again, and its landing pushes to the same head, so the same
    pull request. ``why`` is the task's error meanwhile. Compare-and-set on the version of
    ``state`` (``VersionConflict``: read again); the task as written. Written by the
    follower when council's merge met a conflict, and by ``scheduler.retry.request_rebase``
    when a person asks for it."""
    await services.merges.lending.follow_pull_base(pull_remote(services))
    meta = {**state.metadata, RESOLVE_ROUNDS: round_, "conflicts": []}
    meta.pop(WORKTREE, None)
    meta[PULL] = {**seen, "round": int(seen.get("round", 0)) + 1, "waiting": "", "human": False}
    updates: dict[str, Any] = {
        "status": TaskStatus.QUEUED,
        "current_phase": None,
        "finished_at": None,
        "error": why,
        "metadata": meta,
    }
    written = await services.store.update_task_state(
        state.task_id, updates, expected_version=state.version
    )
    head = str(seen.get("head") or "")
    await services.store.emit(
        MergeResolveRound(task_id=state.task_id, paths=[], kept_branch=head, round=round_)
    )
    return written


async def write(run: RunContext, state: TaskState, updates: dict[str, Any]) -> None:
    """Compare-and-set on the version the pass read (``VersionConflict``: read again)."""
    await run.services.store.update_task_state(
        state.task_id, updates, expected_version=state.version
    )


class PullOutcomes:
    """The follower's writes of what it found (module doc), for the run ``run``."""

    def __init__(self, run: RunContext) -> None:
        self._run = run

    async def note(self, state: TaskState, seen: dict[str, Any], why: str, *, human: bool) -> bool:
        """Record what the pull request waits for, when that changed."""
        seen = {**seen, "waiting": why, "human": human}
        if state.metadata.get(PULL) == seen:
            return False
        await write(self._run, state, {"metadata": {**state.metadata, PULL: seen}})
        return True

    async def merged(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, commit: str | None
    ) -> bool:
        """Merged on the forge: done once the work is on the remote's base."""
        merges = self._run.services.merges
        by_council = commit is not None
        merged_commit = commit or pr.head_sha
        landed = await merges.lending.confirm_pull_landed(self._remote, merged_commit)
        if not landed.contained and not by_council and landed.base is not None:
            # A person's squash or rebase: the head's commits are not on the base as they
            # are; the forge's word that it merged is all there is, and the base's tip seen
            # after it is the landing.
            merged_commit = landed.base
            landed = await merges.lending.confirm_pull_landed(self._remote, merged_commit)
        if not landed.contained:
            why = f"#{pr.number} merged; its work not seen on the remote's base yet"
            return await self.note(state, seen, why, human=False)
        final = {**seen, "state": "merged", "waiting": "", "human": False}
        updates: dict[str, Any] = {
            "status": TaskStatus.DONE,
            "merged_commit": merged_commit,
            "finished_at": utcnow(),
            "error": None,
            "metadata": {**state.metadata, PULL: final},
        }
        await write(self._run, state, updates)
        await self._run.events.emit(
            PullMerged(
                task_id=state.task_id,
                number=pr.number,
                url=pr.url,
                commit=merged_commit,
                by_council=by_council,
            )
        )
        if landed.behind:
            log.info("task %s landed by #%s; %s", state.task_id, pr.number, landed.behind)
        return True

    async def closed(self, state: TaskState, seen: dict[str, Any], pr: PullRequest) -> bool:
        error = (
            f"pull request #{pr.number} was closed without merging (closed by a human): {pr.url}"
        )
        final = {**seen, "state": "closed", "waiting": "", "human": False}
        updates: dict[str, Any] = {
            "status": TaskStatus.FAILED,
            "finished_at": utcnow(),
            "error": error,
            "metadata": {**state.metadata, PULL: final, "outcome": "pull_closed"},
        }
        await write(self._run, state, updates)
        await self._run.events.emit(PullClosed(task_id=state.task_id, number=pr.number, url=pr.url))
        await self._run.events.emit(TaskFailed(task_id=state.task_id, error=error))
        return True

    async def not_merged(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, kind: str, message: str
    ) -> bool:
        """Council's merge was refused. The head moved meanwhile: looked at again next pass
        (the new head needs its own checks). A conflict with the moved base: a resolve round
        (built again on the remote's base, pushed to the same pull request), once; then, or
        for a protection rule the gate did not foresee, it waits on a person."""
        again = await self._forge().get_pull(pr.number)
        if again.merged:  # merged meanwhile (by a person, or another workstation's follower)
            return await self.merged(state, seen, again, None)
        if again.state == "closed":  # closed by a person while its merge was asked
            return await self.closed(state, seen, again)
        await self._run.events.emit(
            PullNotMerged(
                task_id=state.task_id, number=pr.number, url=pr.url, kind=kind, message=message
            )
        )
        seen = {**seen, "head_sha": again.head_sha}
        if kind == "head_changed":
            why = (
                f"#{pr.number}: its head moved while council merged it; looking again (the new "
                "head needs its own approval)"
            )
            return await self.note(state, seen, why, human=False)
        rounds = int(state.metadata.get(RESOLVE_ROUNDS, 0))
        conflict = again.mergeable is False
        if conflict and rounds < MAX_RESOLVE_ROUNDS:
            return await self._resolve_round(state, seen, again, rounds + 1)
        if conflict:
            error = (
                f"pull request #{pr.number} conflicts with {again.base} after its resolve round "
                f"({message}); it stays open with branch {again.head}: {again.url}"
            )
            final = {**seen, "waiting": "", "human": False}
            updates: dict[str, Any] = {
                "status": TaskStatus.CONFLICT,
                "finished_at": utcnow(),
                "error": error,
                "metadata": {**state.metadata, PULL: final},
            }
            await write(self._run, state, updates)
            return True
        refused = {**seen, "refused": seen.get("gate")}
        return await self.note(
            state, refused, f"#{pr.number}: not mergeable: {message}", human=True
        )

    async def _resolve_round(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, round_: int
    ) -> bool:
        """Back to the queue, as a merge-queue conflict's resolve round (``resolve_round``)."""
        why = f"pull request #{pr.number} conflicts with {pr.base}: building again on it"
        await resolve_round(self._run.services, state, {**seen, "head": pr.head}, round_, why)
        return True

    def _forge(self) -> Forge:
        forge = self._run.services.forge
        assert forge is not None  # followed only when the run has one
        return forge

    @property
    def _remote(self) -> str:
        return pull_remote(self._run.services)
