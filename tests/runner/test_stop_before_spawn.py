"""A stop that comes before a CLI's spawn (its phase already past its own look at the stop,
its run being made ready) starts no CLI: the run ends ``cancelled`` with no process, rather
than a CLI started only to be killed."""

from __future__ import annotations

from pathlib import Path

import anyio
import pytest

from orchestrator.adapter import AdapterRequest, OutcomeKind
from orchestrator.runner.cli_run import run_cli
from orchestrator.testing.fake_cli import FakeAdapter, FakeCli


def _request(tmp_path: Path) -> AdapterRequest:
    workdir = tmp_path / "work"
    workdir.mkdir()
    return AdapterRequest(prompt="do it", workdir=workdir, home=tmp_path / "home", task_id="t1")


@pytest.mark.parametrize("which", ["cancel", "halt"])
async def test_a_stop_before_the_spawn_starts_no_cli(tmp_path: Path, which: str) -> None:
    pidfile = tmp_path / "pids"
    cli = FakeCli(pidfile=pidfile, lines=["ran"])
    stop = anyio.Event()
    stop.set()
    run = await run_cli(
        FakeAdapter({"argv": cli.argv()}),
        _request(tmp_path),
        log_dir=tmp_path / "logs",
        cancel=stop if which == "cancel" else None,
        halt=stop if which == "halt" else None,
    )
    assert run.outcome.kind is OutcomeKind.CANCELLED and run.result.cancelled
    assert (run.lines, run.events, run.result.exit_code) == (0, [], None)
    assert not pidfile.exists()  # the CLI never ran: it writes its pid first
    assert run.log_path.read_text().rstrip().endswith("not started: stopped before the CLI's start")


async def test_an_unset_stop_still_runs_the_cli(tmp_path: Path) -> None:
    pidfile = tmp_path / "pids"
    cli = FakeCli(pidfile=pidfile, lines=["ran"])
    run = await run_cli(
        FakeAdapter({"argv": cli.argv()}),
        _request(tmp_path),
        log_dir=tmp_path / "logs",
        cancel=anyio.Event(),
        halt=anyio.Event(),
    )
    assert run.outcome.kind is OutcomeKind.SUCCEEDED and not run.result.cancelled
    assert pidfile.exists() and run.lines >= 1
