"""The event loop never opens, locks, lists or renames a file during a run (issue 16): a real
run of three one-file tasks, each taking its file's lock and going through two phases of the
scripted CLI to its landing, watched by the audit hook of ``orchestrator.testing.loop_io``."""

from __future__ import annotations

from pathlib import Path

from orchestrator.council import Council
from orchestrator.testing.loop_io import watching
from tests.support.scheduler_helpers import merged_tasks, new_repo, run_config


def test_the_watcher_sees_a_file_opened_on_the_loop(tmp_path: Path) -> None:
    import anyio

    target = tmp_path / "seen.txt"

    async def opens_on_the_loop() -> None:
        target.write_text("x")
        await anyio.to_thread.run_sync(target.read_text)  # a worker thread: not counted

    with watching() as found:
        anyio.run(opens_on_the_loop)
    assert [(c.event, c.target) for c in found] == [("open", str(target))]


async def test_a_run_does_no_file_work_on_the_event_loop(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    tasks = [
        {"id": f"t{n}", "prompt": f"WRITE f{n}.txt from task {n}", "files": [f"f{n}.txt"]}
        for n in range(3)
    ]
    config = run_config(
        repo,
        tasks,
        adapters={"alpha": {"type": "scripted", "options": {"delay": 0}}},
        workflow={"phases": [{"name": "plan"}, {"name": "build"}]},
    )
    with watching() as found:
        async with Council(config) as council:
            report = await council.run()
    assert report.totals.done == 3, report
    assert sorted(merged_tasks(repo)) == ["t0", "t1", "t2"]
    calls = sorted({str(call) for call in found})
    assert not calls, f"{len(found)} file calls on the event loop:\n" + "\n".join(calls)


def test_a_cli_stopped_part_way_reads_no_file_on_the_event_loop(tmp_path: Path) -> None:
    """A CLI stopped by an event (here a refused key, then retries that would go on): whether
    it ended on its own before the stop reached it is read from the process table, which is
    files (``/proc``), in a worker thread (``runner.supervise``)."""
    import anyio

    from orchestrator.adapter import AdapterRequest, OutcomeKind
    from orchestrator.process.procid import current
    from orchestrator.runner.cli_run import run_cli
    from orchestrator.testing.fake_cli import FakeAdapter, FakeCli, event_line

    workdir = tmp_path / "work"
    workdir.mkdir()
    request = AdapterRequest(prompt="go", workdir=workdir, home=tmp_path / "home", task_id="t")
    refused = event_line("error", "HTTP 401, retry 1 of 10", error_kind="auth")
    cli = FakeCli(lines=[event_line("started", native_session_id="s-1"), refused], hang=True)

    async def stopped() -> OutcomeKind:
        adapter = FakeAdapter({"argv": cli.argv()})
        run = await run_cli(adapter, request, log_dir=tmp_path / "logs", grace=1)
        assert run.result.ended_early
        return run.outcome.kind

    # This process's own identity is read once per process (``procid.current``), as a run
    # reads it when it opens its store: a run's CLIs find it known.
    anyio.run(anyio.to_thread.run_sync, current)
    with watching() as found:
        assert anyio.run(stopped) is OutcomeKind.AUTH_REQUIRED
    calls = sorted({str(call) for call in found if "/proc/" in str(call)})
    assert not calls, "\n".join(calls)


def test_a_cli_that_cannot_start_has_its_log_written_off_the_event_loop(tmp_path: Path) -> None:
    """A CLI whose program cannot be run (here: not executable): its log, made and closed with
    a footer saying why, is written in a worker thread (``cli_run``), and the error stands."""
    import anyio
    import pytest

    from orchestrator.adapter import AdapterRequest
    from orchestrator.errors import AdapterError
    from orchestrator.process.procid import current
    from orchestrator.runner.cli_run import run_cli
    from orchestrator.testing.fake_cli import FakeAdapter

    workdir = tmp_path / "work"
    workdir.mkdir()
    request = AdapterRequest(prompt="go", workdir=workdir, home=tmp_path / "home", task_id="t")
    program = tmp_path / "cli"
    program.write_text("#!/bin/sh\n")  # not executable: the start fails
    logs = tmp_path / "logs"

    async def refused() -> None:
        await run_cli(FakeAdapter({"argv": [str(program)]}), request, log_dir=logs)

    anyio.run(anyio.to_thread.run_sync, current)  # once per process (the test above says why)
    with watching() as found, pytest.raises(AdapterError, match="permission denied"):
        anyio.run(refused)
    (log,) = logs.iterdir()
    assert "not started" in log.read_text()
    calls = sorted({str(call) for call in found})
    assert not calls, "\n".join(calls)
