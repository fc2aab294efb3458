"""Stopping what a dead orchestrator left running: its CLIs and whatever they started.

A CLI leads its own process group, so it outlives an orchestrator killed with SIGKILL and goes
on editing its worktree. Whoever takes the dead orchestrator's work over calls
``stop_orphans(store, scope)`` first: ``Scheduler.resume`` before anything is requeued, and
the reconcile sweep when it expires a claim another holder let lapse. (A new ``council run``
does not: the dead run's tasks belong to its unfinished session, which only a resume takes
up.) It:

1. takes the ``cli-runs`` records (``orchestrator.runner.cli_runs``) whose orchestrator is dead, on
   this host (a live one, and one on another host, is left alone), and SIGKILLs each recorded
   CLI's process group, when its leader still is the recorded process (same start time) or is
   gone (the group lives on in its members: the kernel never gives a group's id to a new
   process while a member lives). A pid now used by another process is never signalled;
2. looks through every process for those that carry the marker (``procid.MARKER_ENV``) of a
   dead orchestrator of this host and work inside ``scope`` (the repository's ``.council/``):
   a CLI whose orchestrator died before its record was written, a verify command, a child
   that left its group. Each is SIGKILLed, with its group when it leads one;
3. waits until none of them is left (a zombie counts as gone: it holds no files and runs no
   code), or raises ``RunError`` after ``timeout`` seconds naming what would not die;
4. removes the records of the dead orchestrators.

Looking at the processes blocks, so it runs in a worker thread. Where no process can be listed
(psutil unsupported) a recorded leader's identity cannot be checked, so nothing is signalled.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.errors import RunError, VersionConflict
from orchestrator.events.phases import CliOrphansStopped
from orchestrator.process import procid
from orchestrator.process.path_users import cwd_of
from orchestrator.process.procid import ProcessId
from orchestrator.runner.cli_runs import CLI_RUNS, RecordedCli, recorded_clis
from orchestrator.state.protocol import StateStore

__all__ = ["ORPHANS_STOPPED", "Orphan", "stop_orphans"]

ORPHANS_STOPPED = "cli.orphans_stopped"
_POLL = 0.02


@dataclass(frozen=True)
class Orphan:
    """A process group or a single process that was signalled."""

    pid: int
    started: str  # the single process's start time ("" for a group)
    task_id: str | None  # the task of a recorded CLI

    @property
    def group(self) -> bool:
        return not self.started

    def as_dict(self) -> dict[str, object]:
        return {"pid": self.pid, "group": self.group, "task": self.task_id}


async def stop_orphans(store: StateStore, scope: Path, *, timeout: float = 10.0) -> list[Orphan]:
    """Stop every process a dead orchestrator left (module doc); what was signalled."""
    records = [r for r in await recorded_clis(store) if procid.is_alive(r.orchestrator) is False]
    inside = await anyio.to_thread.run_sync(scope.resolve)
    killed = await anyio.to_thread.run_sync(_kill, records, inside)
    deadline = time.monotonic() + timeout
    while left := await anyio.to_thread.run_sync(_remaining, killed):
        if time.monotonic() > deadline:
            names = ", ".join(f"{'group' if o.group else 'pid'} {o.pid}" for o in left)
            raise RunError(
                f"processes of a dead orchestrator still run {timeout:g}s after SIGKILL: {names}"
            )
        await anyio.sleep(_POLL)
    for record in records:
        with contextlib.suppress(VersionConflict):  # rewritten meanwhile: someone else's now
            await store.delete_record(CLI_RUNS, record.task_id, record.version)
    if killed:
        await store.emit(CliOrphansStopped(orphans=[o.as_dict() for o in killed]))
    return killed


def _kill(records: list[RecordedCli], scope: Path) -> list[Orphan]:
    table = procid.living()
    if not table:
        return []  # no process listed: no way to tell a recorded process from a stranger
    killed: list[Orphan] = []
    for record in records:
        leader = table.get(record.process.pid)
        if leader is not None and leader.started != record.process.started:
            continue  # the pid is someone else's now, so its group cannot be the CLI's
        if any(p.pgid == record.pgid for p in table.values()):
            _signal(record.pgid, group=True)
            killed.append(Orphan(record.pgid, "", record.task_id))
    dead: dict[str, bool] = {}
    groups = {o.pid for o in killed}
    for pid, proc in table.items():
        if proc.pgid in groups:
            continue  # signalled with its recorded group
        if not _inside(pid, scope):
            continue  # asked first: cheap, and most processes of a host fail it
        marker = procid.marker_of(pid)
        if marker is None:
            continue
        if marker not in dead:
            owner = ProcessId.parse_marker(marker)
            dead[marker] = owner is not None and procid.is_alive(owner) is False
        if dead[marker]:
            leads = proc.pgid == pid
            _signal(pid, group=leads)
            killed.append(Orphan(pid, "" if leads else proc.started, None))
            if leads:
                groups.add(pid)
    return killed


def _remaining(killed: list[Orphan]) -> list[Orphan]:
    table = procid.living()
    groups = {p.pgid for p in table.values()}
    return [
        o
        for o in killed
        if (o.pid in groups if o.group else (o.pid in table and table[o.pid].started == o.started))
    ]


def _inside(pid: int, scope: Path) -> bool:
    cwd = cwd_of(pid)
    return cwd is not None and cwd.is_relative_to(scope)


def _signal(pid: int, *, group: bool) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        if group:
            os.killpg(pid, signal.SIGKILL)
        else:
            os.kill(pid, signal.SIGKILL)
