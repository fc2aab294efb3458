"""A CLI's run hands blocking work to anyio's worker threads in few calls (issue 51): its log is
created in the same call that reads the CLI's start for its record, its group is reaped in the
same call as the first look for what it left behind, and its log is closed in the same call
that takes in a sandboxed CLI's objects."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import anyio.to_thread
import pytest

from orchestrator.adapter import AdapterRequest, AgentEvent
from orchestrator.errors import RunError
from orchestrator.process import procid, stop
from orchestrator.process.output import LogSink
from orchestrator.runner.cli_run import run_cli
from orchestrator.runner.cli_runs import CliRunBook, recorded_clis
from orchestrator.state import FileStateStore
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli
from tests.support.hops import count_hops


async def test_a_cli_run_takes_no_hop_for_a_step_that_can_ride_with_another(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    cli = FakeCli(ticks=2, tick=0.01)
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    alone = {procid.start_time, stop.reap_group, LogSink.create, LogSink.close}
    hopped: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hopped.append(getattr(fn, "__func__", fn))
        return await real(fn, *args, **kwargs)

    recorded: list[str] = []
    async with FileStateStore(tmp_path / "state") as store:

        class Watch(CliRunBook):
            async def began(self, pid: int, begin: Callable[[], str | None]) -> None:
                await super().began(pid, begin)
                (running,) = await recorded_clis(store)
                recorded.append(running.process.started)

        monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
        run = await run_cli(
            FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs",
            watch=Watch(store, "t1", "build"),
        )  # fmt: skip
    assert run.result.exit_code == 0
    assert [f for f in hopped if f in alone] == []  # each rode with another step's call
    assert recorded and recorded[0]  # the CLI's start, read with its log's creation
    assert "exit_code=0" in run.log_path.read_text()  # its log closed with the footer


@pytest.mark.sandbox
async def test_a_confined_clis_home_is_made_in_the_call_that_builds_its_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from adapters.command import CommandAdapter
    from orchestrator.process import env
    from orchestrator.runner import cli_run, cli_setup
    from orchestrator.sandbox import choice
    from orchestrator.sandbox.plan import SandboxSettings
    from tests.sandbox.test_sandbox_plan import layout

    reach, worktree, home, _ = layout(tmp_path)
    home.rmdir()  # a fresh session's HOME: not made yet
    binary, reason = await choice.probe()
    assert binary is not None, reason
    adapter = CommandAdapter({"binary": "sh", "args": ["-c", 'echo {prompt}; echo "$HOME"']})
    request = AdapterRequest(prompt="hello", workdir=worktree, home=home, task_id="t1")
    sandbox = cli_run.Sandbox(SandboxSettings("bubblewrap", binary, reason=reason), reach)
    hopped = count_hops(monkeypatch)
    run = await run_cli(adapter, request, log_dir=tmp_path / "logs", sandbox=sandbox)
    assert run.ok, run.outcome
    assert env.prepare_home not in hopped
    assert cli_setup.confined_command not in hopped  # both rode in one call
    assert env.home_ready(home)  # made before the CLI ran in it
    assert "hello" in run.log_path.read_text()


async def test_a_clis_log_is_created_in_the_call_that_records_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The ``cli-runs`` record and the log's creation (with the start read for it) are one
    worker-thread call on the file store (``CliWatch.began``, ``put_made_record``)."""
    workdir = tmp_path / "work"
    workdir.mkdir()
    cli = FakeCli(ticks=1, tick=0.01)
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    seen: list[str] = []
    async with FileStateStore(tmp_path / "state") as store:

        class Watch(CliRunBook):
            async def began(self, pid: int, begin: Callable[[], str | None]) -> None:
                calls = len(hopped)
                await super().began(pid, begin)
                seen.append(f"{len(hopped) - calls} hop")
                (running,) = await recorded_clis(store)
                seen.append(running.process.started)

        await store.put_record("cli-runs", "t0", {})  # the store's first write settles it
        await store.delete_record("cli-runs", "t0")
        hopped = count_hops(monkeypatch)
        run = await run_cli(
            FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs",
            watch=Watch(store, "t1", "build"),
        )  # fmt: skip
        assert await recorded_clis(store) == []  # removed once it ended
    assert run.result.exit_code == 0
    one_hop, started = seen
    assert one_hop == "1 hop" and started  # the log, the start and the record: one call
    names = [getattr(fn, "__qualname__", "") for fn in hopped]
    assert "_run_prepared.<locals>.create_log" not in names
    assert "exit_code=0" in run.log_path.read_text()


async def test_a_log_that_cannot_be_created_records_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    workdir = tmp_path / "work"
    workdir.mkdir()
    (tmp_path / "logs").write_text("a file where the log directory goes\n")
    cli = FakeCli(ticks=50, tick=0.05)
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    async with FileStateStore(tmp_path / "state") as store:
        with pytest.raises(RunError, match="cannot write the run's log"):
            await run_cli(
                FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs",
                watch=CliRunBook(store, "t1", "build"),
            )  # fmt: skip
        assert await recorded_clis(store) == []


async def test_a_watched_clis_end_is_one_call_with_its_records_removal(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """After the CLI exits, its family's sweep (its group reaped first), its log's close and
    the removal of its ``cli-runs`` record are one worker-thread call on the file store
    (``CliWatch.ended``, ``delete_record_after``): a run is two calls, its start and its end."""
    from orchestrator.process.env import prepare_home

    workdir = tmp_path / "work"
    workdir.mkdir()
    prepare_home(tmp_path / "home", {})  # a HOME made already: no call of its own
    cli = FakeCli(ticks=1, tick=0.01)
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    removed: list[bool] = []
    async with FileStateStore(tmp_path / "state") as store:

        class Watch(CliRunBook):
            async def ended(self, pid: int, end: Callable[[], None] | None = None) -> None:
                def then() -> None:
                    assert end is not None
                    end()
                    log = run_log(tmp_path / "logs")
                    assert "exit_code=0" in log.read_text()  # closed before the record goes
                    removed.append(bool(list((tmp_path / "state").rglob("t1*"))))

                await super().ended(pid, then)

        await store.put_record("cli-runs", "t0", {})  # the store's first write settles it
        await store.delete_record("cli-runs", "t0")
        hopped = count_hops(monkeypatch)
        run = await run_cli(
            FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs",
            watch=Watch(store, "t1", "build"),
        )  # fmt: skip
        calls = list(hopped)
        assert await recorded_clis(store) == []  # removed once it ended
    assert run.result.exit_code == 0
    assert removed == [True]  # its end done while the record still named the CLI
    assert len(calls) == 2, calls  # the record with the log; the end with the removal


def run_log(logs: Path) -> Path:
    (log,) = logs.glob("*.log")
    return log


@pytest.mark.sandbox
async def test_a_confined_clis_reach_is_looked_at_in_the_call_that_builds_its_sandbox(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A ``Sandbox`` whose reach is yet to be looked at (``look``, as a phase's CLI gets it)
    has it looked at in the worker-thread call that builds its command: one call for both."""
    from adapters.command import CommandAdapter
    from orchestrator.sandbox import choice
    from orchestrator.sandbox.plan import Sandbox, SandboxSettings
    from tests.sandbox.test_sandbox_plan import layout

    reach, worktree, home, _ = layout(tmp_path)
    binary, reason = await choice.probe()
    assert binary is not None, reason
    adapter = CommandAdapter({"binary": "sh", "args": ["-c", "echo {prompt}"]})
    request = AdapterRequest(prompt="hello", workdir=worktree, home=home, task_id="t1")
    looked: list[object] = []

    def look() -> Any:
        looked.append(reach)
        return reach

    sandbox = Sandbox(SandboxSettings("bubblewrap", binary, reason=reason), None, look=look)
    hopped = count_hops(monkeypatch)
    run = await run_cli(adapter, request, log_dir=tmp_path / "logs", sandbox=sandbox)
    assert run.ok, run.outcome
    assert looked == [reach]  # looked at once
    assert look not in hopped  # in the call that built the command
    # the command (with its reach), the log's creation, the run's end
    assert len(hopped) == 3, hopped
    assert "hello" in run.log_path.read_text()


async def test_a_stopped_cli_is_signalled_in_its_first_call_and_reaped_with_its_sweep(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A stop (the task's cancel event) takes three worker-thread calls to the run's end: the
    look at whether the CLI is still running, for what left its group and the SIGTERM, in
    one; once the group is dead, the SIGKILL and reaping of what was found with the sweep for
    what started meanwhile, in one; the run's end. Eight CLIs stopped at once share the
    worker threads: each call more was a wait more for every one of them. Nothing of the
    CLI's family outlives the stop: a child in its group and one in a session of its own,
    both ignoring SIGTERM."""
    from orchestrator.process import tree
    from orchestrator.runner import supervise
    from tests.support.cli_process_helpers import wait_gone

    workdir = tmp_path / "work"
    workdir.mkdir()
    pidfile = tmp_path / "pids"
    cli = FakeCli(
        children=1, setsid_child=True, pidfile=pidfile, lines=["ready"], ignore_term=True,
        hang=True,
    )  # fmt: skip
    request = AdapterRequest(prompt="p", workdir=workdir, home=tmp_path / "home", task_id="t1")
    cancel = anyio.Event()
    hopped = count_hops(monkeypatch)
    at_stop: list[int] = []

    def on_event(event: AgentEvent) -> None:
        if event.text == "ready" and not cancel.is_set():
            at_stop.append(len(hopped))
            cancel.set()

    run = await run_cli(
        FakeAdapter({"argv": cli.argv()}), request, log_dir=tmp_path / "logs", cancel=cancel,
        on_event=on_event, grace=0.3,
    )  # fmt: skip
    assert run.result.cancelled
    pids = [int(pid) for pid in pidfile.read_text().split()]
    assert len(pids) == 3  # the CLI, its child, its child in a session of its own
    assert wait_gone(pids, timeout=1.0) == []
    stopping = hopped[at_stop[0] :]
    alone = {tree.find_strays, tree.reap, stop.reap_group, stop.swept, supervise._gone}
    assert [fn for fn in stopping if fn in alone] == []  # each rode with another step's call
    assert len(stopping) == 3, stopping
