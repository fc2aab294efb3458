"""One team budget, reserved atomically in the store (``spend.reservations``): spend gates in
processes of their own start calls at the same instant against a $1.00 budget with $0.60
forecasts, on the file store (several processes of one machine) and on a real PostgreSQL
server (each its own connection, as workstations): exactly one starts, the others are held;
after it closes at its real cost the next fits or not by that figure; a crashed holder's
reservation is settled by its ledger record (released when its call never started, counted
at its forecast when it did); a limit raised with ``council budget raise`` applies."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import anyio
import pytest

from orchestrator.config.budgets import BudgetsConfig, Limit
from orchestrator.spend import budgets as rules
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.spend.raising import raise_budget
from orchestrator.spend.reservations import FUNDS, Fund, FundView
from orchestrator.state.file.store import FileStateStore
from orchestrator.state.protocol import StateStore
from tests.support.timing import patience

CHILD = Path(__file__).parents[1] / "support" / "fund_child.py"
SESSION = "s-team"


class Workstation:
    """A gate in a process of its own (``fund_child.py``)."""

    def __init__(self, backend: str, target: str, task: str, cwd: Path) -> None:
        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(CHILD.parents[2]), *sys.path])}
        self.proc = subprocess.Popen(
            [sys.executable, str(CHILD), backend, target, SESSION, task],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            cwd=cwd,
            env=env,
        )

    def send(self, command: str) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(command + "\n")
        self.proc.stdin.flush()

    def answer(self) -> str:
        assert self.proc.stdout is not None
        with selectors.DefaultSelector() as sel:
            sel.register(self.proc.stdout, selectors.EVENT_READ)
            if not sel.select(patience(25)):
                raise AssertionError(f"workstation {self.proc.pid} did not answer")
        line = self.proc.stdout.readline()
        assert line, f"workstation {self.proc.pid} ended (exit {self.proc.wait()})"
        return line.strip()

    def ask(self, command: str) -> str:
        self.send(command)
        return self.answer()

    def crash(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if self.proc.poll() is None:
            self.proc.stdin.close()
            try:
                self.proc.wait(timeout=patience(10))
            except subprocess.TimeoutExpired:
                self.crash()
        for pipe in (self.proc.stdin, self.proc.stdout):
            if not pipe.closed:
                pipe.close()


@pytest.fixture
def team(tmp_path: Path) -> Iterator[list[Workstation]]:
    started: list[Workstation] = []
    yield started
    for one in started:
        one.stop()


def _view(open_store: object) -> FundView:
    async def read() -> FundView:
        async with open_store() as store:  # type: ignore[operator]
            found = await Fund(store, SESSION).view()
            assert found is not None
            return found

    return anyio.run(read)


def _raise(open_store: object, usd: float) -> None:
    async def write() -> None:
        async with open_store() as store:  # type: ignore[operator]
            budgets = BudgetsConfig(run=Limit(usd=1.0))
            await raise_budget(store, budgets, SESSION, "run", {"usd": usd})

    anyio.run(write)


def _one_budget(backend: str, target: str, cwd: Path, open_store: object, team: list) -> None:
    crowd = [Workstation(backend, target, f"t{n}", cwd) for n in range(4)]
    team.extend(crowd)
    assert [one.answer() for one in crowd] == ["ready"] * 4
    for one in crowd:  # every gate told at once, before any answer is read
        one.send("open")
    answers = [one.answer() for one in crowd]
    started = [one for one, said in zip(crowd, answers, strict=True) if said.startswith("started")]
    held = [said for said in answers if not said.startswith("started")]
    assert len(started) == 1, answers
    assert all(said.startswith("held budget the run's budget ($1.00") for said in held), held
    first, rest = started[0], [one for one in crowd if one is not started[0]]
    view = _view(open_store)
    assert view.counted("run") == (pytest.approx(0.6), 0) and len(view.held) == 1

    # Closed at its real cost, $0.30: the next $0.60 fits (0.90), the one after it does not.
    assert first.ask("close 0.30") == "closed"
    second, third, fourth = rest
    assert second.ask("open").startswith("started")
    assert third.ask("open").startswith("held budget")
    view = _view(open_store)
    assert view.spent["run"] == (pytest.approx(0.3), 0)
    assert view.counted("run")[0] == pytest.approx(0.9)

    # The second holder crashes with its call running (its ledger record open): its
    # reservation is settled at the forecast the ledger counts, and still leaves no room.
    second.crash()
    assert third.ask("open").startswith("held budget")
    view = _view(open_store)
    assert view.held == {} and len(view.lost) == 1
    assert view.counted("run")[0] == pytest.approx(0.9)

    # Raised to $2.00: a holder reserves $0.60 and dies before its call's ledger record is
    # opened (the call never started): its reservation is released, and the last call fits.
    _raise(open_store, 2.0)
    assert third.ask("reserve").startswith("reserved")
    third.crash()
    assert fourth.ask("open").startswith("started")
    view = _view(open_store)
    [only] = view.held.values()
    assert only["usd"] == pytest.approx(0.6)
    assert view.counted("run")[0] == pytest.approx(1.5)


def test_one_team_budget_across_processes_on_the_file_store(
    tmp_path: Path, team: list[Workstation]
) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    _one_budget("file", str(repo), repo, lambda: FileStateStore.for_repo(repo), team)


def test_one_team_budget_across_workstations_on_postgresql(
    pg_dsn: str, tmp_path: Path, team: list[Workstation]
) -> None:
    from orchestrator.state.postgres.store import PostgresStateStore

    async def connect() -> PostgresStateStore:
        return await PostgresStateStore.connect(pg_dsn)

    class Opened:
        async def __aenter__(self) -> StateStore:
            self.store = await connect()
            return await self.store.__aenter__()

        async def __aexit__(self, *exc: object) -> None:
            await self.store.__aexit__(*exc)

    _one_budget("postgresql", pg_dsn, tmp_path, Opened, team)


def _entry(call: str, usd: float) -> LedgerEntry:
    return LedgerEntry(
        call=call,
        session_id=SESSION,
        task="t1",
        phase="build",
        adapter="claude",
        started_at=datetime(2025, 6, 1, 12, tzinfo=UTC),
        forecast_usd=usd,
    )


async def test_a_holder_whose_lease_lapsed_is_dead_and_a_settled_call_counts_once(
    tmp_path: Path,
) -> None:
    """A holder on another machine (its process cannot be asked) is dead once its lease record
    is gone; a close retried after its settle counts nothing twice."""
    async with FileStateStore.for_repo(tmp_path) as store:
        scopes = rules.scopes_for(BudgetsConfig(run=Limit(usd=1.0)), "t1", "claude")
        away = Fund(store, SESSION, who={"pid": 1, "host": "elsewhere"}, alive=lambda who: None)
        here = Fund(store, SESSION)
        assert await away.reserve(_entry("call-a", 0.6), scopes) is None
        over = await here.reserve(_entry("call-b", 0.6), scopes)
        assert over is not None and over.scope.key == "run"  # its lease still runs
        await away.leave()  # as a lapsed lease reads: absent
        assert await here.reserve(_entry("call-b", 0.6), scopes) is None
        closed = _entry("call-b", 0.6).model_copy(
            update={"ended_at": datetime(2025, 6, 1, 12, 5, tzinfo=UTC), "cost_usd": 0.25}
        )
        await here.settle(closed)
        await here.settle(closed)  # retried: settled already
        view = await here.view()
        assert view is not None and view.held == {}
        assert view.spent["run"] == (pytest.approx(0.25), 0)
        assert view.spent["run@2025-06-01"] == (pytest.approx(0.25), 0)


async def test_a_damaged_fund_is_named() -> None:
    with pytest.raises(ValueError, match=r"spend-funds/s1: spent\['run'\] is not \[usd, tokens\]"):
        FundView.of({"spent": {"run": 3}}, f"{FUNDS}/s1")
