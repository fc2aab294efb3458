"""``council status``'s output, text (plain and ``--wide``) and ``--json``, of one fixed state:
the same bytes however the look is made (built from the records, drawn from the kept summary,
read back from the kept report) and the same as the outputs recorded here, which the command
printed before its first look was made quicker (issue 51: the collector paused, the report's
task lines made without validating twice, plain tables without choosing columns). A real
``council`` process each time, so what the script's start-up does is in it too; and what that
look imports stays off the modules it has no use for."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.models import TaskStatus
from orchestrator.run.reports import report_cache
from orchestrator.services.records import NAMESPACE as SERVICES
from orchestrator.state import FileStateStore
from tests.support.cli_process_helpers import ENV
from tests.support.timing import patience

SESSION = "s-golden"
T0 = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)

# Each kind of line a finished or stopped run's report has: usage of each type of number (a
# cost kept as an integer is validated into a float, as before), a failure with its outcome,
# a conflict, a dependency waited for, a budget's hold, a pull request, a council task's
# candidates, a landing that vanished, a session's services.
TASKS: dict[str, dict[str, Any]] = {
    "done-a": {
        "status": TaskStatus.DONE,
        "adapter": "claude",
        "attempt": 1,
        "branch": "council/done-a/1",
        "merged_commit": "a" * 40,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=12.5),
        "phases": {"build": {"name": "build", "status": "completed", "attempt": 1}},
        "metadata": {
            "usage": {"input_tokens": 184, "output_tokens": 5, "cost_usd": 0.000627},
            "conflicts": [],
        },
    },
    "done-int-cost": {
        "status": TaskStatus.DONE,
        "adapter": "codex",
        "attempt": 2,
        "branch": "council/done-int-cost/2",
        "merged_commit": "b" * 40,
        "started_at": T0,
        "finished_at": T0 + timedelta(minutes=3),
        "metadata": {"usage": {"input_tokens": 3.0, "output_tokens": 7, "cost_usd": 1}},
    },
    "failed-b": {
        "status": TaskStatus.FAILED,
        "adapter": "claude",
        "attempt": 3,
        "error": "the build's verify command failed: tests/test_x.py::y",
        "phases": {"build": {"name": "build", "status": "failed", "attempt": 3}},
        "metadata": {"outcome": "verify_failed", "failures": 3},
    },
    "conflict-c": {
        "status": TaskStatus.CONFLICT,
        "adapter": "gemini",
        "attempt": 1,
        "branch": "council/conflict-c/1",
        "error": "merge conflict",
        "metadata": {"conflicts": ["README.md", "src/app.py"]},
    },
    "queued-d": {"status": TaskStatus.QUEUED},
    "held-e": {
        "status": TaskStatus.QUEUED,
        "phases": {"plan": {"name": "plan", "status": "completed", "attempt": 1}},
        "metadata": {"held": "budget: run budget spent"},
    },
    "review-f": {
        "status": TaskStatus.IN_REVIEW,
        "adapter": "claude",
        "attempt": 1,
        "branch": "council/review-f/1",
        "metadata": {
            "pull": {
                "number": 12,
                "url": "https://forge.example/o/r/pull/12",
                "state": "open",
                "approvals": 1,
                "checks": "pending",
                "round": 1,
                "waiting": "checks",
            }
        },
    },
    "council-g": {
        "status": TaskStatus.DONE,
        "adapter": "codex",
        "attempt": 1,
        "branch": "council/council-g/1",
        "merged_commit": "c" * 40,
        "metadata": {
            "council": {
                "candidates": [
                    {"task_id": "council-g~1", "adapter": "claude", "status": "failed"},
                    {
                        "task_id": "council-g~2",
                        "adapter": "codex",
                        "status": "done",
                        "chosen": True,
                    },
                ]
            },
            "relanded": [{"commit": "d" * 40, "base": "e" * 40, "action": "reland"}],
        },
    },
    "services-h": {
        "status": TaskStatus.DONE,
        "adapter": "claude",
        "attempt": 1,
        "merged_commit": "f" * 40,
        "started_at": T0,
        "finished_at": T0 + timedelta(seconds=1),
    },
}
OPTIONS = {"tasks": [{"id": "queued-d", "depends_on": ["failed-b"]}]}


async def _write(root: Path) -> None:
    async with FileStateStore(root) as store:
        await store.create_session(OPTIONS, list(TASKS), session_id=SESSION)
        for task_id, fields in TASKS.items():
            if fields != {"status": TaskStatus.QUEUED}:
                await store.update_task_state(task_id, fields)
        services = [
            {"name": "web", "state": "ready", "port": 8080},
            {"name": "db", "state": "failed", "why": "exit 3"},
        ]
        await store.put_record(SERVICES, "services-h", {"session": SESSION, "services": services})


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


def _status(repo: Path, *args: str) -> tuple[str, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *args],
        cwd=repo,
        capture_output=True,
        text=True,
        env={**ENV, "COLUMNS": "80"},
        timeout=patience(60),
        check=False,
    )
    return done.stdout, json.loads(done.stderr.rsplit("\n", 1)[1])


@pytest.fixture(scope="module")
def repo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    repo = tmp_path_factory.mktemp("golden") / "repo"
    state = repo / ".council" / "state"
    state.parent.mkdir(parents=True)
    anyio.run(_write, state)
    return repo


def _forget(repo: Path) -> None:
    (repo / ".council" / "state" / report_cache.CACHE_NAME).unlink(missing_ok=True)


# Printed by the command before the change, from this state (``about`` in the file).
RECORDED = json.loads((Path(__file__).parent / "data" / "status_outputs.json").read_text())


def test_the_built_the_kept_and_the_read_back_look_print_what_status_printed(repo: Path) -> None:
    _forget(repo)
    built, _ = _status(repo)
    kept, _ = _status(repo)
    assert kept == built
    _forget(repo)
    wide_built, _ = _status(repo, "--wide")
    wide_kept, _ = _status(repo, "--wide")
    assert wide_kept == wide_built
    _forget(repo)
    json_built, _ = _status(repo, "--json")
    json_kept, _ = _status(repo, "--json")
    assert json_kept == json_built
    assert built.splitlines() == RECORDED["text"]
    assert wide_built.splitlines() == RECORDED["wide"]
    assert json_built == json.dumps(RECORDED["json"], indent=2) + "\n"  # byte for byte


# What a look that builds the report has no use for: the run machinery (``test_cli_startup``),
# the events (a constant of the scheduler's context is all it reads there), the radar's models
# while no collision is recorded, the writer of the runs ``status`` finds, and rich's boxed
# tables, live displays and spinners (a plain table, piped or long, is drawn without them).
UNUSED = (
    "orchestrator.events",
    "orchestrator.radar.records",
    "orchestrator.radar.warning",
    "orchestrator.safety.safe_write",
    "orchestrator.scheduler.scheduler",
    "orchestrator.council",
    "rich.table",
    "rich.live",
    "rich.status",
)


def test_a_built_look_imports_none_of_what_it_does_not_use(repo: Path) -> None:
    _forget(repo)
    shown, modules = _status(repo)
    assert "4/9 done" in shown
    assert "orchestrator.run.reports.quick_report" in modules  # it was built
    assert [m for m in modules if any(m == n or m.startswith(f"{n}.") for n in UNUSED)] == []
