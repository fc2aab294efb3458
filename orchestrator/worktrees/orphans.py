"""Worktrees a run left behind whose state is gone (``.council/state`` deleted, the database
dropped), taken in: their work committed on their branches, the worktrees retired.

Such a worktree is still registered with git under ``.council/worktrees`` on its branch
``council/<task>/<n>``, locked with a reason naming its session, CLI and task
(``names.lock_reason``), but no record of the state store knows it: nothing would ever remove
it, and a new run of the same task forks another branch beside it. An **orphan** is one of
ours (its lock reason is ours) that the store does not know: no worktree record of its
session, no task record naming it (``claimed``) and no record of its task (``tasks``), and
that this manager is not making or removing.

``adopt_orphans`` (the next ``council run`` before it dispatches anything, and ``council
worktrees prune``) retires each with the safety rules of any removal (``retire``): uncommitted
and untracked work committed on its branch with the orchestrator's identity and trailers,
the tip kept under ``refs/council/rescue/<session>`` unless the base has it, the worktree
removed (never pooled), the branch kept unless the base contains its tip. A
``worktree.adopted`` event (a warning) says what was taken in and where the work now is.
Objects a sandboxed CLI of the dead run wrote to its private store (``.council/objects/<wt>``)
were taken into the shared store when the workspace was prepared (``confine``), before this
reads any of them.

Never touched: a worktree of the user's (outside ``.council/worktrees``, or locked with a
reason that is not ours), one a process still runs in (``WorktreeBusy``: a live run's CLI),
and, by the callers, every worktree while another orchestrator holds the repository's run
lock (``run.run_lock``): the run itself holds it, ``prune`` takes it for the adoption. One
registered whose directory is gone loses git's record of it alone (``worktree remove`` of that
path), its branch kept with every commit.
"""

from __future__ import annotations

import logging
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path

import anyio.to_thread

from orchestrator.errors import WorkspaceError, WorktreeBusy
from orchestrator.events.worktrees import WorktreeAdopted
from orchestrator.git import seal
from orchestrator.worktrees.models import RemovalResult, WorktreeInfo
from orchestrator.worktrees.names import parse_lock_reason
from orchestrator.worktrees.ops import Workspace
from orchestrator.worktrees.sessions import SessionBook

__all__ = ["Adoption", "adopt_orphans"]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Adoption:
    """One orphan: taken in (``removal``), its directory gone (only git's record dropped), or
    left alone (``problem`` says why)."""

    session_id: str
    task_id: str
    path: Path
    branch: str | None
    removal: RemovalResult | None = None
    problem: str | None = None

    def describe(self) -> str:
        """One line: what was done and where the work is now."""
        if self.problem is not None:
            return f"left {self.path} alone: {self.problem}"
        removal = self.removal
        if removal is None:
            return (
                f"dropped git's record of {self.path} (its directory was gone); "
                f"branch {self.branch or '-'} kept with every commit"
            )
        text = f"adopted {self.path}, left by a run whose state is gone"
        if removal.rescue_commit:
            text += f": its uncommitted work committed as {removal.rescue_commit[:12]}"
        if removal.branch_deleted:
            return text + f"; branch {removal.branch} deleted (the base has all its commits)"
        text += f"; the work is on branch {removal.branch}"
        if removal.tip:
            text += f" at {removal.tip[:12]}"
        return text + "; the worktree is removed"


def orphans(
    infos: list[WorktreeInfo],
    known: Collection[str],
    claimed: Collection[str],
    tasks: Collection[str],
) -> list[WorktreeInfo]:
    """The registered worktrees of ours no record knows (module doc)."""
    found = []
    for info in infos:
        if info.kind != "session" or not info.registered or info.session_id is None:
            continue
        if info.session_id in known or info.session_id in claimed or info.task_id in tasks:
            continue
        found.append(info)
    return found


async def adopt_orphans(
    book: SessionBook,
    ws: Workspace,
    *,
    claimed: Collection[str] = (),
    tasks: Collection[str] = (),
) -> list[Adoption]:
    """Take in every orphan (module doc); the caller holds the repository's run lock.
    ``claimed``: session ids task records name; ``tasks``: task ids the store has records of."""
    infos = await book.list_worktrees()
    known = set(await book.all()) | book.busy
    done: list[Adoption] = []
    for info in orphans(infos, known, claimed, tasks):
        adoption = await _adopt(book, ws, info)
        if adoption is not None:
            done.append(adoption)
            if adoption.problem is not None:
                log.warning("%s", adoption.describe())
    return done


async def _adopt(book: SessionBook, ws: Workspace, info: WorktreeInfo) -> Adoption | None:
    assert info.session_id is not None
    sid, task = info.session_id, info.task_id or "unknown"
    here = Adoption(sid, task, info.path, info.branch)
    if info.locked and parse_lock_reason(info.lock_reason) is None:
        return _left(here, f"it is locked by someone else ({info.lock_reason or 'no reason'})")
    if not info.exists:
        async with ws.meta.hold():
            if await anyio.to_thread.run_sync(info.path.exists):
                return None  # it came back meanwhile: the next look decides
            await ws.git.run("worktree", "unlock", str(info.path), check=False)
            result = await ws.git.run("worktree", "remove", str(info.path), check=False)
        if not result.ok:
            return _left(here, f"git could not drop its record: {result.stderr.strip()}")
        await _said(book, here)
        return here
    if info.branch is None:
        return _left(here, "its HEAD is detached: no branch to keep its work on")
    try:
        found = await book.get(sid)
        with book.making_or_removing(sid):
            async with book.lock(sid):
                removal = await book.retire(found, force=False, pool_it=False)
    except WorktreeBusy:
        return _left(here, "processes still run in it")
    except WorkspaceError as exc:
        return _left(here, str(exc))
    await anyio.to_thread.run_sync(seal.forget_worktree, ws.layout.root, info.path)
    adopted = Adoption(sid, found.task_id, info.path, removal.branch, removal)
    await _said(book, adopted)
    return adopted


def _left(adoption: Adoption, problem: str) -> Adoption:
    return Adoption(
        adoption.session_id, adoption.task_id, adoption.path, adoption.branch, problem=problem
    )


async def _said(book: SessionBook, adoption: Adoption) -> None:
    removal = adoption.removal
    await book.emit(
        WorktreeAdopted(
            task_id=adoption.task_id,
            session_id=adoption.session_id,
            path=str(adoption.path),
            branch=adoption.branch or "",
            tip=removal.tip if removal is not None else None,
            commit=removal.rescue_commit if removal is not None else None,
            message=adoption.describe(),
        )
    )
