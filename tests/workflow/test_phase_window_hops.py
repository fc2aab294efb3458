"""The blocking work on each side of a phase's CLI, one worker-thread call a side (issue 51):
before it, the tamper guard's look and the council server's socket in the ledger record's open;
after it, the socket's removal and the guard's look after in the record's close. The record is
written whatever the look after finds, and nothing is left when the opening fails."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from adapters.scripted import Scripted
from orchestrator.coordination import service
from orchestrator.coordination.desk import Caller
from orchestrator.coordination.session_tools import session_tools
from orchestrator.errors import StateError
from orchestrator.spend.gate import SpendGate
from orchestrator.spend.ledger import NAMESPACE as LEDGER
from orchestrator.spend.ledger import Ledger
from orchestrator.state import FileStateStore
from orchestrator.workflow.task_run import TaskRun, WorkflowStatus
from orchestrator.workflow.workflow import run_workflow
from orchestrator.worktrees.tamper.guard import TamperGuard
from tests.support.hops import count_hops
from tests.support.workflow_helpers import Harness, harness, task

__all__ = ["harness"]

# What each side's blocking parts were handed to a worker thread as, each alone, before.
_ALONE = {
    "CutOff.cut_then",  # the guard's look before
    "TamperGuard.finish.<locals>.setup_then_cut",  # its look after
    "Arming.look",
    "Finishing.look",
    "_listening",  # the council server's socket
    "listening",
    "SessionSocket.remove",
    "serve_session.<locals>.<lambda>",
    "Opening.open",
    "Closing.close",
}


async def _watched_run(harness: Harness, **fields: Any) -> TaskRun:
    config = harness.config(task({"build": "WRITE src/feature.py <<EOF\nVALUE = 1\nEOF"}), **fields)
    run = await harness.start(config)
    run.spend = SpendGate(harness.store, config, "s1")
    caller = Caller(run.session.session_id, run.task.id)
    run.tools = session_tools(harness.store, harness.locks, caller)
    return run


def _sockets(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The socket directories made from now on (each session's, private), for a CLI that
    takes MCP servers (the scripted one here, as if it did: one that takes none gets no
    socket, ``test_a_cli_that_takes_no_mcp_server_gets_no_socket``)."""
    monkeypatch.setattr(Scripted, "takes_mcp_servers", True)
    made: list[Path] = []
    real = service._private_dir

    def private_dir() -> Path:
        made.append(real())
        return made[-1]

    monkeypatch.setattr(service, "_private_dir", private_dir)
    return made


async def test_each_side_of_the_cli_is_one_call_the_ledger_records(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await _watched_run(harness, workflow={"phases": [{"name": "build"}]})
    sockets = _sockets(monkeypatch)
    hopped = count_hops(monkeypatch)

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    names = [getattr(fn, "__qualname__", "") for fn in hopped]
    assert not _ALONE & set(names), names
    # the ledger's open and close: one put_made_record call each, carrying the rest
    made = [n for n in names if n == "FileCore._try_locked"]
    assert len(made) >= 2
    (call,) = await Ledger(harness.store).entries("s1")
    assert call.ended_at is not None and call.outcome == "succeeded"
    assert sockets and not any(p.exists() for p in sockets)  # gone with the CLI
    guard = await harness.worktrees.tamper_guard()
    assert guard._ledger.live() == []  # the session's window closed


async def test_a_cli_that_takes_no_mcp_server_gets_no_socket(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The council's tools are a socket served around each phase's CLI; a CLI that takes no
    MCP server (the scripted one, aider, a command) would never be given it: none is opened,
    and the desk behind it is never made (``coordination.tools_later``)."""
    run = await _watched_run(harness, workflow={"phases": [{"name": "build"}]})
    made = _sockets(monkeypatch)
    monkeypatch.setattr(Scripted, "takes_mcp_servers", False)  # as it is
    built: list[object] = []
    real = run.tools
    assert real is not None

    class Counted:
        def open(self) -> Any:
            built.append(self)
            assert real is not None
            return real.open()

    run.tools = Counted()

    result = await run_workflow(run)

    assert result.status == WorkflowStatus.READY_TO_MERGE, result.message
    assert made == [] and built == []
    (call,) = await Ledger(harness.store).entries("s1")
    assert call.outcome == "succeeded"


async def test_a_failing_look_after_still_closes_the_call(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    run = await _watched_run(harness, workflow={"phases": [{"name": "build"}]})

    def broken(self: TamperGuard, *args: Any) -> Any:
        raise OSError("the look after could not read git's setup")

    monkeypatch.setattr(TamperGuard, "_setup_then_cut", broken)
    sockets = _sockets(monkeypatch)
    with pytest.raises(OSError, match="could not read git's setup"):
        await run_workflow(run)
    (call,) = await Ledger(harness.store).entries("s1")
    assert call.ended_at is not None  # closed all the same, at what the CLI said
    assert sockets and not any(p.exists() for p in sockets)
    guard = await harness.worktrees.tamper_guard()
    assert guard._ledger.live() == []


@pytest.mark.parametrize("error", [OSError, StateError])
async def test_an_opening_whose_record_cannot_be_written_leaves_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch, error: type[Exception]
) -> None:
    run = await _watched_run(harness, workflow={"phases": [{"name": "build"}]})
    real = FileStateStore.put_made_record_and_task  # the open carries the phase's start
    ran: list[str] = []

    async def refused(
        self: FileStateStore, namespace: str, key: str, make: Any, *a: Any, **k: Any
    ) -> Any:
        if namespace != LEDGER:
            return await real(self, namespace, key, make, *a, **k)

        def made_then_refused() -> Any:
            make()  # the look and the socket, made; then the write fails
            ran.append(key)
            raise error("no space left on the state's disk")

        return await real(self, namespace, key, made_then_refused, *a, **k)

    monkeypatch.setattr(FileStateStore, "put_made_record_and_task", refused)
    sockets = _sockets(monkeypatch)
    with pytest.raises(error, match="no space left"):  # the store's, as it came
        await run_workflow(run)
    # not taken for the phase's failure: its start, carried in the same call, is not
    # written either (as a crash before the open leaves it: the phase runs from the start)
    assert "build" not in (await harness.state()).phases
    assert ran  # the opening's blocking work ran in the record's call
    assert await Ledger(harness.store).entries("s1") == []  # no record for a CLI not started
    assert harness.prompts("build") == []  # and no CLI started
    assert sockets and not any(p.exists() for p in sockets)  # its socket removed
    guard = await harness.worktrees.tamper_guard()
    assert guard._ledger.live() == []  # its window closed
