"""The CLIs running now, recorded in the state store so a successor can stop them.

Each CLI runs as the leader of its own process group, so SIGKILL of the orchestrator does not
reach it: it runs on, editing its worktree, until it next writes to the pipe nobody reads. A
``council resume`` (or a scheduler sweeping the dead orchestrator's claims) must stop it
before running the same phase again in the same worktree. ``CliRunBook`` is the
``process.CliWatch`` the workflow hands to ``run_cli``: when the CLI has started, the keyed
record ``cli-runs/<task>`` says which process it is (pid, process group, start time, host),
for which task and phase, under which orchestrator; once its group is dead the record is
removed, only if it still names that pid (a later attempt's CLI may have replaced it).

One record per task: a task's phases run one after another, and one attempt runs a task at a
time. The record is written without fsync (``durable=False``) but by atomic replace, so it
survives the death of the orchestrator, which is what it is for; a machine crash takes the CLI
down with it. ``orchestrator.runner.orphans`` reads these records back.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import anyio.to_thread

from orchestrator.errors import VersionConflict
from orchestrator.process import procid
from orchestrator.process.procid import ProcessId
from orchestrator.state.protocol import StateStore

__all__ = ["CLI_RUNS", "CliRunBook", "RecordedCli", "recorded_clis"]

CLI_RUNS = "cli-runs"  # keyed-record namespace, one record per task


@dataclass(frozen=True)
class RecordedCli:
    """A CLI as recorded when it started: itself (the group's leader) and its orchestrator."""

    task_id: str
    phase: str
    process: ProcessId
    pgid: int
    orchestrator: ProcessId
    version: int  # of its record, to remove exactly this one

    @classmethod
    def parse(cls, key: str, data: dict[str, Any], version: int) -> RecordedCli | None:
        process = ProcessId.from_dict(data)
        orchestrator = data.get("orchestrator")
        owner = ProcessId.from_dict(orchestrator) if isinstance(orchestrator, dict) else None
        pgid, phase = data.get("pgid"), data.get("phase")
        if process is None or owner is None or not isinstance(pgid, int):
            return None
        return cls(key, str(phase or ""), process, pgid, owner, version)


class CliRunBook:
    """Records the CLI of one task's phase while it runs (a ``process.CliWatch``)."""

    def __init__(self, store: StateStore, task_id: str, phase: str) -> None:
        self.store = store
        self.task_id = task_id
        self.phase = phase
        self._written: dict[int, int] = {}  # pid -> the version of the record written for it

    async def began(self, pid: int, begin: Callable[[], str | None]) -> None:
        """``begin`` (the runner's log created, the CLI's start read) and the record in one
        store call: one worker-thread call on the file store (``put_made_record``)."""
        me = procid.current()

        def made() -> tuple[dict[str, Any], None]:
            started = begin()
            data = {
                **ProcessId(pid, me.host, started or "").as_dict(),
                "pgid": pid,  # run_cli starts every CLI as the leader of a new group
                "task": self.task_id,
                "phase": self.phase,
                "orchestrator": me.as_dict(),
            }
            return data, None

        written, _ = await self.store.put_made_record(CLI_RUNS, self.task_id, made, durable=False)
        self._written[pid] = written.version

    async def started(self, pid: int, start_time: str | None) -> None:
        """Record the CLI ``pid`` as started at ``start_time`` (``began`` with nothing to do)."""
        await self.began(pid, lambda: start_time)

    async def ended(self, pid: int, end: Callable[[], None] | None = None) -> None:
        """The record of the CLI ``pid`` removed, after ``end`` (the runner's blocking end of
        the run: what the CLI left running killed) in the same store call: one worker-thread
        call on the file store (``delete_record_after``). The record names a live process for
        a successor to stop until then, so a crash before ``end`` is done leaves it."""
        # The version written at the start names the record exactly (its pid is ``pid``):
        # removed only while it is that version, with no read first.
        version = self._written.pop(pid, None)
        if version is None:
            if end is not None:
                await anyio.to_thread.run_sync(end)
                end = None
            record = await self.store.get_record(CLI_RUNS, self.task_id)
            if record is None or record.data.get("pid") != pid:
                return
            version = record.version
        with contextlib.suppress(VersionConflict):  # replaced or gone: not ours to remove
            if end is None:
                await self.store.delete_record(CLI_RUNS, self.task_id, version)
            else:
                await self.store.delete_record_after(CLI_RUNS, self.task_id, end, version)


async def recorded_clis(store: StateStore) -> list[RecordedCli]:
    """Every CLI recorded as running (damaged records are skipped)."""
    found = []
    for record in await store.list_records(CLI_RUNS):
        parsed = RecordedCli.parse(record.key, record.data, record.version)
        if parsed is not None:
            found.append(parsed)
    return found
