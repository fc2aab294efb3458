"""``council status``'s summary kept beside the report (``cli.status.kept_view``): drawn again,
while nothing was written, exactly as the report itself would be, with none of the report's
models imported; a team's, a park's, or a kept view that is not one as ``view_of`` makes
them, never drawn."""

from __future__ import annotations

import io
import json
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import anyio
import pytest
from rich.console import Console

from orchestrator.cli import console
from orchestrator.cli.status.kept_view import checked, print_view, view_of
from orchestrator.cli.status.summary import print_summary
from orchestrator.cli.store_access import newest_report
from orchestrator.models import SessionStatus, TaskStatus
from orchestrator.run.reports import report_cache
from orchestrator.run.reports.report import PullReport, RunReport, RunTotals, TaskReport
from orchestrator.services import records as services_records
from orchestrator.services.records import ServiceState
from orchestrator.spend.line import SpendLine
from orchestrator.state import FileStateStore
from tests.support.cli_process_helpers import ENV, council
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

# What reading a report back costs, and a kept summary is drawn without.
REPORT_MODULES = (
    "pydantic",
    "pydantic_core",
    "orchestrator.models",
    "orchestrator.run.reports.report",
    "orchestrator.run.reports.quick_report",
    "orchestrator.cli.status.summary",
)


def _task(n: int, **fields: object) -> TaskReport:
    done = n % 3 != 1
    base: dict[str, object] = {
        "task_id": f"t{n:03d}",
        "status": TaskStatus.DONE if done else TaskStatus.FAILED,
        "phases": {"build": "completed" if done else "failed"},
        "adapter": "claude",
        "attempts": 1 + n % 2,
        "branch": f"council/t{n:03d}/1",
        "merged_commit": f"{n:040x}" if done else None,
        "duration_seconds": n + 0.25,
        "error": None if done else "the build's verify command failed: tests/test_x.py::y",
    }
    return TaskReport.model_validate({**base, **fields})


def _report(tasks: list[TaskReport], **fields: object) -> RunReport:
    done = sum(t.status == TaskStatus.DONE for t in tasks)
    totals = RunTotals(
        tasks=len(tasks), done=done, failed=len(tasks) - done, conflict=0, cancelled=0, pending=0
    )
    return RunReport.model_validate(
        {
            "session_id": "s-1",
            "status": SessionStatus.COMPLETED,
            "tasks": tasks,
            "totals": totals,
            **fields,
        }
    )


REPORTS = {
    "plain": _report([_task(n) for n in range(12)]),
    "services, a pull request, holds and a spend line": _report(
        [
            _task(0, services=[ServiceState(name="web", state="ready", port=8080)]),
            _task(1, services=[ServiceState(name="db", state="failed", why="exit 3")]),
            _task(
                2,
                status=TaskStatus.IN_REVIEW,
                pull=PullReport(number=7, url="https://forge.example/7", state="open"),
            ),
            _task(3, status=TaskStatus.QUEUED, held="quota of claude until 12:00"),
            _task(4, status=TaskStatus.QUEUED, waiting="budget: run budget spent"),
            _task(5, collision="collides with t000 on README.md (hunks)"),
            _task(6, adapter=None, branch=None, merged_commit=None, duration_seconds=None),
            _task(7, task_id="t-ünïcode", error="a \x1b[31m coloured [bold]error[/bold]"),
        ],
        spend=SpendLine(usd=1.5, tokens=12345, calls=9, held="run budget spent"),
    ),
}


@pytest.fixture(params=["terminal 80", "terminal 200", "piped"])
def drawn(request: pytest.FixtureRequest) -> Iterator[io.StringIO]:
    """Where ``console`` draws, as a terminal of 80 or 200 columns or a pipe."""
    out = io.StringIO()
    kept = console.stdout
    terminal = str(request.param).startswith("terminal")
    width = int(str(request.param).split()[1]) if terminal else 80
    console.stdout = Console(file=out, width=width, force_terminal=terminal, highlight=False)
    yield out
    console.stdout = kept


def _drawn(out: io.StringIO) -> str:
    text = out.getvalue()
    out.seek(0)
    out.truncate()
    return text


@pytest.mark.parametrize("name", list(REPORTS))
@pytest.mark.parametrize("wide", [False, True])
def test_a_kept_view_draws_what_the_report_draws(name: str, wide: bool, drawn: io.StringIO) -> None:
    report = REPORTS[name]
    view = view_of(report)
    assert view is not None
    print_summary(report, wide)
    expected = _drawn(drawn)
    # As the kept file holds it: JSON, read back.
    assert print_view(json.loads(json.dumps(view)), wide) is True
    assert _drawn(drawn) == expected
    assert "t000" in expected


def test_a_summary_drawn_by_the_moment_is_not_kept() -> None:
    parked = _task(
        0,
        status=TaskStatus.PARKED,
        parked_until=datetime.now(UTC) + timedelta(minutes=5),  # shown in the local zone
    )
    assert view_of(_report([parked])) is None
    assert view_of(_report([_task(0)], team="team-1")) is None  # leases and workstations age
    assert view_of(_report([_task(0)])) is not None


def _good() -> dict[str, object]:
    view = view_of(REPORTS["plain"])
    assert view is not None
    return json.loads(json.dumps(view))  # type: ignore[no-any-return]


@pytest.mark.parametrize(
    "damage",
    [
        {"format": 2},
        {"format": None},
        {"columns": ["task", "status"]},
        {"columns": ["task", "status", "adapter", "attempts", "branch", "merged", "time", "x"]},
        {"rows": [["t0", "done", "a", 1, "b", "c", "1s"]]},  # one cell short
        {"rows": [["t0", "done", "a", "1", "b", "c", "1s", ""]]},  # attempts not a number
        {"rows": [["t0", "done", "a", True, "b", "c", "1s", ""]]},  # nor a bool
        {"rows": [["t0", "done", "a", 1, "b", None, "1s", ""]]},  # a cell not a string
        {"rows": "t0"},
        {"title": 3},
        {"lines": "spent $1"},
        {"lines": [1]},
    ],
)
def test_a_kept_view_that_is_not_one_is_not_drawn(
    damage: dict[str, object], drawn: io.StringIO
) -> None:
    assert checked(_good()) is not None
    view = {**_good(), **damage}
    assert checked(view) is None
    assert print_view(view) is False
    assert _drawn(drawn) == ""  # nothing half drawn
    assert print_view(["not", "a", "view"]) is False and print_view(None) is False


def test_the_quick_look_names_the_services_records_as_they_are_kept() -> None:
    assert report_cache.SERVICES == services_records.NAMESPACE


async def _session(root: Path, tasks: list[str]) -> None:
    async with FileStateStore(root) as store:
        await store.create_session({}, tasks)
        await store.update_task_state(tasks[0], {"status": TaskStatus.DONE})


@pytest.mark.anyio
async def test_the_view_is_kept_and_given_back_only_while_the_report_holds(tmp_path: Path) -> None:
    root = tmp_path / "state"
    await _session(root, ["a", "b"])
    report, _ = await newest_report(root, None, view_of)
    assert report_cache.kept_view(root) == json.loads(json.dumps(view_of(report)))
    async with FileStateStore(root) as store:
        await store.update_task_state("b", {"status": TaskStatus.FAILED})
    assert report_cache.kept_view(root) is None  # a record written: built again
    await newest_report(root)  # kept by a reader that makes no view: none given back
    assert report_cache.kept_report(root) is not None and report_cache.kept_view(root) is None


PROBE = """\
import json, sys
sys.argv = ["council", "status", *sys.argv[1:]]
from orchestrator.cli.app import main
try:
    main()
except SystemExit:
    pass
sys.stderr.write("\\n" + json.dumps(sorted(sys.modules)))
"""


def test_status_of_a_kept_report_imports_none_of_the_reports_models(tmp_path: Path) -> None:
    """The property behind ``bench/startup_bench.py``'s ``status (N tasks)``: the look after the
    first draws the kept summary, the same lines, without pydantic or the report's models;
    ``--json`` still reads the report back, validated, the same document."""
    repo = tmp_path / "repo"
    state = repo / ".council" / "state"
    state.parent.mkdir(parents=True)
    anyio.run(_session, state, [f"t{n}" for n in range(40)])

    def status(*args: str) -> tuple[str, list[str]]:
        done, modules = _probe(repo, *args)
        return done.stdout, modules

    def of_report(modules: list[str]) -> list[str]:
        return [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in REPORT_MODULES)]

    built, first = status()
    kept, second = status()
    assert kept == built and "1/40 done" in built
    assert of_report(first) != []  # built from the records, validated
    # Reading the radar's records masks nothing (their writer did): its masker stays unloaded.
    assert "orchestrator.safety.secret_mask" not in first
    assert of_report(second) == []  # drawn from the kept view
    shown_json, third = status("--json")
    assert len(json.loads(shown_json)["tasks"]) == 40
    assert "orchestrator.run.reports.report" in third  # the report itself, validated
    (state / report_cache.CACHE_NAME).unlink()
    assert status("--json")[0] == shown_json  # the same document as built from the records


RUN = """\
repo: repo
adapters:
  alice: {type: scripted, options: {delay: 0}}
default_adapter: alice
capacity: {sessions: 2}
workflow: {phases: [{name: build}]}
retry: {max_retries: 0, backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: add-word-count, prompt: "WRITE words.txt x"}
  - {id: document-the-usage, prompt: "WRITE usage.txt y"}
"""


def _probe(cwd: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
        check=False,
    )
    return done, json.loads(done.stderr.rsplit("\n", 1)[1])


def test_the_first_status_after_a_run_draws_the_summary_the_run_kept(tmp_path: Path) -> None:
    """``kept_after_run``: a run that printed its report keeps it for ``status``, whose first
    look (from where the run was started, no argument) draws the kept summary, importing none
    of the report's models, the same lines as a look that builds the report again."""
    new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(RUN)
    done = council("run", config, "--json", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    state = tmp_path / "repo" / ".council" / "state"
    assert (state / report_cache.CACHE_NAME).is_file()

    first, modules = _probe(tmp_path)
    assert first.returncode == 0, first.stderr
    assert "2/2 done" in first.stdout
    loaded = [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in REPORT_MODULES)]
    assert loaded == []

    (state / report_cache.CACHE_NAME).unlink()  # built from the records: the same lines
    rebuilt, modules = _probe(tmp_path)
    assert rebuilt.stdout == first.stdout
    assert "orchestrator.run.reports.quick_report" in modules
