"""``council worktrees list|prune``: the repository's worktrees, and cleaning up after runs.

- ``list FILE [--json] [--wide]``: every worktree git knows (the user's checkout and worktrees
  too) plus the ones the store records but git lacks, with owner session, task, branch, whether
  it is locked, prunable (its directory is gone) and ours (made by CLI Council). Paths, ids and
  branches are never cut.
- ``prune FILE [--json]``: the worktree manager's reconcile. A session's checkout whose git
  admin directory was deleted (``.git/worktrees/<name>``) is given back to git on its branch
  first, so its edits are kept like any others (``worktrees.stranded``); worktrees whose
  directory was deleted by hand lose their git metadata (their branches stay); worktrees of **dead**
  sessions are removed under the safety rules: uncommitted work is committed, an unmerged tip
  is saved under ``refs/council/rescue/<session>`` and its branch kept; only a branch the base
  already contains is deleted. The user's own worktrees are never touched.

A worktree is live, and kept, when its task is not finished or belongs to a run that is not
finished (active or interrupted: ``council resume`` continues in it). While any run of the
repository is being executed by a live orchestrator, no session is treated as dead at all: that
orchestrator may be creating a worktree it has not recorded yet.

``prune`` first takes in the worktrees of a run whose state was deleted (``worktrees.orphans``:
no record knows them; their work is committed on their branches, the worktrees removed), also
when no run is recorded at all, holding the repository's run lock (``run.run_lock``) meanwhile;
while an orchestrator holds it, nothing is adopted and no session is treated as dead.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.meant import meant_config
from orchestrator.cli.store_access import open_store, running_process, sessions_by_age
from orchestrator.config.load import load_config
from orchestrator.config.run import RunConfig
from orchestrator.errors import RunLocked
from orchestrator.models import (
    ACTIVE_SESSION_STATUSES,
    TERMINAL_TASK_STATUSES,
    SessionRecord,
    TaskState,
)
from orchestrator.process import procid
from orchestrator.run.run_lock import RunLock, acquire_run_lock
from orchestrator.state import StateStore
from orchestrator.task_meta import TaskMeta
from orchestrator.worktrees.layout import COUNCIL_DIR
from orchestrator.worktrees.manager import WorktreeManager
from orchestrator.worktrees.models import ReconcileReport, RemovalResult, WorktreeInfo
from orchestrator.worktrees.orphans import Adoption

__all__ = ["PruneOutcome", "app", "describe_prune", "prune_dead"]

app = typer.Typer(
    name="worktrees",
    help="List the repository's worktrees and clean up those of finished runs.",
    no_args_is_help=True,
    add_completion=False,
)

FileArg = Annotated[
    Path | None,
    typer.Argument(help="The run config (YAML) of the repository (default: the one meant here)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
WideOption = Annotated[bool, typer.Option("--wide", help="Show every column whole.")]
_COLUMNS = (
    console.Column("path", key=True),
    console.Column("session", key=True),
    console.Column("task", key=True),
    console.Column("branch", key=True),
    console.Column("locked", drop=1),
    console.Column("prunable", drop=2),
    console.Column("ours", drop=3),
)


@dataclass(frozen=True)
class PruneOutcome:
    report: ReconcileReport
    paths: dict[str, Path]  # session id -> worktree path, as they were before the prune
    held_by: tuple[str, procid.ProcessId] | None  # a live run: dead sessions were left alone
    adopted: tuple[Adoption, ...] = ()  # worktrees of runs whose state is gone (``orphans``)
    run_locked: str | None = None  # another orchestrator holds the run lock: this says who

    def as_dict(self) -> dict[str, Any]:
        held = None
        if self.held_by is not None:
            held = {"session_id": self.held_by[0], "process": self.held_by[1].as_dict()}
        adopted = [
            {
                "session_id": a.session_id,
                "task_id": a.task_id,
                "path": str(a.path),
                "branch": a.branch,
                "removal": a.removal.model_dump(mode="json") if a.removal else None,
                "problem": a.problem,
                "message": a.describe(),
            }
            for a in self.adopted
        ]
        return {
            "report": self.report.model_dump(mode="json"),
            "held_by": held,
            "adopted": adopted,
            "run_locked": self.run_locked,
        }


@app.command("list")
def list_(file: FileArg = None, as_json: JsonOption = False, wide: WideOption = False) -> None:
    """List the worktrees of FILE's repository."""
    config = load_config(meant_config(file, "worktrees list"))
    infos = event_loop.run(_list, config)
    if as_json:
        rows = [{**info.model_dump(mode="json"), "ours": info.ours} for info in infos]
        console.print_lines(json.dumps(rows, indent=2))
        return
    table = [
        (
            _shown(info.path, config.repo),
            info.session_id or "-",
            info.task_id or "-",
            info.branch or "(detached)",
            _yes(info.locked),
            _yes(info.prunable or not info.exists),
            _yes(info.ours),
        )
        for info in infos
    ]
    console.print_table(_COLUMNS, table, title=f"worktrees of {config.repo}", wide=wide)


@app.command()
def prune(file: FileArg = None, as_json: JsonOption = False) -> None:
    """Drop worktrees deleted by hand and clean up those of finished runs, losing nothing."""
    config = load_config(meant_config(file, "worktrees prune"))
    outcome = event_loop.run(_prune, config)
    if as_json:
        console.print_lines(json.dumps(outcome.as_dict(), indent=2))
        return
    lines, warnings = describe_prune(outcome, config.repo, config.base_branch)
    for warning in warnings:
        console.print_warning(warning)
    console.print_lines("\n".join(lines or ["nothing to prune"]))


async def _list(config: RunConfig) -> list[WorktreeInfo]:
    async with open_store(config) as store:
        return await _manager(config, store).list_worktrees()


async def _prune(config: RunConfig) -> PruneOutcome:
    if config.state.backend == "file" and await anyio.to_thread.run_sync(_state_deleted, config):
        # A run made worktrees here, and its state is gone: every one of ours is an orphan.
        return await _adopt_only(config)
    async with open_store(config) as store:  # no run ever here: a usage error naming it
        return await prune_dead(config, store)


def _state_deleted(config: RunConfig) -> bool:
    """Worktrees of a run are there (``.council/worktrees``), its state directory is not."""
    return (config.repo / COUNCIL_DIR / "worktrees").is_dir() and not config.state_dir.is_dir()


async def _adopt_only(config: RunConfig) -> PruneOutcome:
    """``prune`` where no state is kept: take in the orphans alone (module doc)."""
    manager = _manager(config, None)
    try:
        run_lock = await anyio.to_thread.run_sync(acquire_run_lock, config.repo)
    except RunLocked as exc:
        return PruneOutcome(ReconcileReport(), {}, None, run_locked=str(exc))
    with run_lock:
        adopted = await manager.adopt_orphans()
    return PruneOutcome(ReconcileReport(), {}, None, tuple(adopted))


async def prune_dead(config: RunConfig, store: StateStore) -> PruneOutcome:
    """Reconcile the repository's worktrees, removing those of dead sessions (module doc)."""
    run_lock: RunLock | None = None
    locked: str | None = None
    try:
        run_lock = await anyio.to_thread.run_sync(acquire_run_lock, config.repo)
    except RunLocked as exc:
        locked = str(exc)
    try:
        return await _prune_dead(config, store, locked)
    finally:
        if run_lock is not None:
            run_lock.release()


async def _prune_dead(config: RunConfig, store: StateStore, run_locked: str | None) -> PruneOutcome:
    manager = _manager(config, store)
    sessions = await sessions_by_age(store)
    tasks = await store.list_tasks()
    by_session: defaultdict[str | None, list[TaskState]] = defaultdict(list)
    for task in tasks:
        by_session[task.session_id].append(task)
    held_by = None
    for session in sessions:
        runner = running_process(session, by_session[session.session_id])
        if runner is not None:
            held_by = (session.session_id, runner)
            break
    adopted: list[Adoption] = []
    if run_locked is None and held_by is None:
        claimed = {s for t in tasks if (s := TaskMeta.read(t.metadata).worktree.session)}
        tasks_known = {t.task_id for t in tasks}
        adopted = await manager.adopt_orphans(claimed=claimed, tasks=tasks_known)
    infos = await manager.list_worktrees()
    paths = {info.session_id: info.path for info in infos if info.ours and info.session_id}
    keep_all = held_by is not None or run_locked is not None
    live = None if keep_all else live_worktrees(sessions, tasks, infos)
    report = await manager.reconcile(live_sessions=live)
    return PruneOutcome(report, paths, held_by, tuple(adopted), run_locked)


def live_worktrees(
    sessions: Sequence[SessionRecord], tasks: Sequence[TaskState], infos: Sequence[WorktreeInfo]
) -> set[str]:
    """Worktree session ids to keep: those of tasks not finished or of runs not finished."""
    unfinished = {s.session_id for s in sessions if s.status in ACTIVE_SESSION_STATUSES}
    keep_tasks = {
        t.task_id
        for t in tasks
        if t.session_id in unfinished or t.status not in TERMINAL_TASK_STATUSES
    }
    live = {
        session
        for t in tasks
        if t.task_id in keep_tasks and (session := TaskMeta.read(t.metadata).worktree.session)
    }
    # A worktree made just before its task recorded it (a crash in between) is known by task.
    live |= {i.session_id for i in infos if i.session_id and i.task_id in keep_tasks}
    return live


def describe_prune(outcome: PruneOutcome, repo: Path, base: str) -> tuple[list[str], list[str]]:
    """What a prune did, as lines for stdout, and what needs a human, as warnings."""
    report = outcome.report
    lines = [a.describe() for a in outcome.adopted if a.problem is None]
    lines += [f"moved stale lock {m.path} to {m.moved_to}" for m in report.moved_locks]
    lines += [f"recovered {what}" for what in report.recovered]
    lines += [
        f"pruned {_shown(path, repo)}: its directory was gone, git's record of it is dropped"
        for path in report.pruned
    ]
    lines += [_removal(r, outcome.paths.get(r.session_id), repo, base) for r in report.removed]
    lines += [f"removed pooled worktree {_shown(p, repo)}" for p in report.pool_trimmed]
    lines += [
        f"session {sid} has no worktree any more; `council resume` recreates it from its branch"
        for sid in report.missing
    ]
    warnings = [f"kept session {sid}: processes still run in its worktree" for sid in report.busy]
    warnings += [
        f"left {_shown(p, repo)} alone: git does not know it, check it and delete it by hand"
        for p in report.orphans
    ]
    warnings += [a.describe() for a in outcome.adopted if a.problem is not None]
    warnings += list(report.problems)
    if outcome.run_locked is not None:
        warnings.append(f"nothing was adopted and every worktree was kept: {outcome.run_locked}")
    if outcome.held_by is not None:
        sid, proc = outcome.held_by
        warnings.append(
            f"worktrees of finished runs were kept: session {sid} is being run by process "
            f"{proc.pid} on {proc.host}"
        )
    return lines, warnings


def _removal(result: RemovalResult, path: Path | None, repo: Path, base: str) -> str:
    where = f" ({_shown(path, repo)})" if path is not None else ""
    text = f"removed the worktree of session {result.session_id}{where}"
    if result.pooled:
        text = f"cleaned the worktree of session {result.session_id}{where} for reuse"
    if result.rescue_commit:
        text += f"; uncommitted work committed as {result.rescue_commit[:10]}"
    if result.branch_deleted:
        return text + f"; branch {result.branch} deleted ({base} has all its commits)"
    text += f"; branch {result.branch} kept"
    if result.rescue_ref:
        text += f", tip saved at {result.rescue_ref}"
    return text


def _manager(config: RunConfig, store: StateStore | None) -> WorktreeManager:
    return WorktreeManager(
        config.repo, store=store, base_branch=config.base_branch, settings=config.worktrees
    )


def _shown(path: Path, repo: Path) -> str:
    try:
        return str(path.relative_to(repo.resolve())) or "."
    except ValueError:
        return str(path)


def _yes(flag: bool) -> str:
    return "yes" if flag else "no"
