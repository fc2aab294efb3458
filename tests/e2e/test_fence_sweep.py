"""The fence sweep: a team run on a real PostgreSQL and a bare remote, one workstation frozen
(SIGSTOP) past its lease at every kind of step it takes, while its CLIs go on, then continued.

Like the crash sweep (``test_crash_sweep.py``), but for the path a pause takes instead of a
death: the frozen workstation's claims lapse; its partner (for odd k) or, alone (even k), its
own sweeper takes the task over; when it is continued it fences itself (its lease clock ran
out, the store refuses its writes, or its landing), stops or keeps its CLI's work, and the
task runs again. The tasks *append* a line (an edit that shows when it is made twice), over
two phases (plan, build), so a phase re-run on top of its own output, a landing made twice or
a landing lost are each visible in the remote's files.

``trace`` runs the team once, unpaused, with ``COUNCIL_CRASH_TRACE`` to count the steps of
each kind (``git.ran`` for every git command, fetches and pushes included; ``cli.spawned``,
``phase.ended``, ``phase.completed``, ``claim.recorded`` and the merge points). Every case then
starts a fresh team with ``COUNCIL_CRASH_AT=<point>:<k>`` and ``COUNCIL_CRASH_SIGNAL=SIGSTOP`` on
workstation ``a``, waits for the pause, holds it past the lease, continues it, and checks at
the content level: every task landed exactly once (one ``Council-Task`` trailer each), its file
holds its line exactly once, no other file changed, and both workstations ended 0.
``COUNCIL_SWEEP_EVERY=<n>`` sweeps every n-th git command and durable file write (default 4).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import SIGNAL_ENV, TRACE_ENV
from tests.support.cli_process_helpers import wait_for
from tests.support.merge_repo import git
from tests.support.team_helpers import Team
from tests.support.timing import patience

pytestmark = pytest.mark.postgres

TASKS = ("t01", "t02", "t03")
# Seconds of lease (a pause is held 1.5 times that), scaled with the machine's load: the
# partner's own renewals must not lapse on a loaded machine while a's pause does.
STALE = patience(2.0)
EVERY = int(os.environ.get("COUNCIL_SWEEP_EVERY", "4"))
# Points reached a few times a run: each arrival is swept, up to this many.
FEW = {
    "cli.spawned": 6,
    "phase.ended": 3,
    "phase.completed": 3,
    "claim.recorded": 3,
    "merge.locked": 3,
    "merge.recorded": 3,
}

CONFIG = """\
repo: {repo}
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: 2}}
workflow: {{phases: [{{name: plan}}, {{name: build}}]}}
retry: {{max_retries: 4, backoff_initial: 0.05, backoff_max: 0.3}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.3, stale_threshold: {stale}s}}
state: {{backend: postgresql}}
tasks:
"""


def _task(task_id: str) -> dict[str, Any]:
    return {
        "id": task_id,
        "prompt": f"Append a line to tasks/{task_id}.txt.",
        "files": [f"tasks/{task_id}.txt"],
        "metadata": {
            "phase_instructions": {
                "plan": f"SAY FILES: tasks/{task_id}.txt",
                "build": f"APPEND tasks/{task_id}.txt appended once by {task_id}\nSLEEP 0.3",
            }
        },
    }


def _team(root: Path, dsn: str, names: tuple[str, ...]) -> Team:
    team = Team(root, dsn)
    entries = "".join(f"  - {json.dumps(_task(t))}\n" for t in TASKS)
    for name in names:
        team.workstation(name, [])  # the clone; its config is this sweep's
        config = CONFIG.format(repo=root / name, stale=STALE)
        (root / f"{name}.yaml").write_text(config + entries)
    return team


def _stopped(pid: int) -> bool:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (FileNotFoundError, IndexError):
        return False
    return fields[0] == "T"


def _problems(team: Team) -> list[str]:
    """The content-level promises, on the remote's base."""
    found = []
    landed = Counter(team.landed_tasks())
    for task_id in TASKS:
        if landed[task_id] != 1:
            found.append(f"{task_id} landed {landed[task_id]} times")
    files = team.base_files()
    for task_id in TASKS:
        text = files.get(f"tasks/{task_id}.txt")
        if text != f"appended once by {task_id}":
            found.append(f"tasks/{task_id}.txt on the base is {text!r}")
    extra = set(files) - {f"tasks/{t}.txt" for t in TASKS}
    if extra:
        found.append(f"files no task writes landed: {sorted(extra)}")
    if team.show("README.md") != "# team":
        found.append("README.md changed")
    return found


@pytest.fixture(scope="module")
def trace(pg_server: Any, tmp_path_factory: pytest.TempPathFactory) -> Counter[str]:
    """One unpaused team run of one workstation, traced: how many steps of each point."""
    root = tmp_path_factory.mktemp("fence-trace")
    dsn = pg_server.fresh()
    team = _team(root, dsn, ("a",))
    steps = root / "trace.txt"
    try:
        team.start("a", env={TRACE_ENV: str(steps)})
        code, _report, err = team.finish("a", timeout=120)
    finally:
        team.stop_all()
        pg_server.drop(dsn)
    assert code == 0, err[-3000:]
    assert not _problems(team), _problems(team)
    return Counter(line.partition("\t")[0] for line in steps.read_text().splitlines())


def pause_case(root: Path, dsn: str, point: str, k: int) -> list[str]:
    """Pause workstation ``a`` at ``point:k`` past its lease (with a partner for odd k, alone
    for even k), continue it, let both end; what went wrong, if anything."""
    partner = k % 2 == 1
    names = ("a", "b") if partner else ("a",)
    root.mkdir(parents=True, exist_ok=True)
    team = _team(root, dsn, names)
    armed = {CRASH_ENV: f"{point}:{k}", SIGNAL_ENV: "SIGSTOP"}
    paused = False
    try:
        process = team.start("a", env=armed)
        if partner:
            team.start("b")
        wait_for(
            lambda: _stopped(process.pid) or process.poll() is not None, "the pause or the end"
        )
        if process.poll() is None:
            paused = True
            time.sleep(STALE * 1.5)  # past its lease: the task is someone else's to take
            os.kill(process.pid, signal.SIGCONT)
        results = {name: team.finish(name, timeout=120) for name in names}
    finally:
        team.stop_all()
    where = f"{point}:{k} ({'with a partner' if partner else 'alone'}, paused={paused})"
    problems = [
        f"workstation {name} ended {code}: {err[-2000:]}"
        for name, (code, _report, err) in results.items()
        if code != 0
    ]
    problems += _problems(team)
    if not problems:
        return []
    errs = "\n".join(f"--- {n}:\n{r[2][-2500:]}" for n, r in results.items())
    return [f"{where}: {problems}\n{_story(team)}\n{errs}"]


@pytest.mark.parametrize(
    ("point", "k"),
    [(point, k) for point, most in FEW.items() for k in range(1, most + 1)],
    ids=lambda value: str(value),
)
def test_a_workstation_frozen_at_each_step_of_a_kind_lands_every_edit_once(
    point: str, k: int, pg_dsn: str, tmp_path: Path
) -> None:
    """Every arrival at the points a run reaches a few times (a k past this run's arrivals
    lets it end unpaused, and it is checked whole all the same)."""
    problems = pause_case(tmp_path, pg_dsn, point, k)
    assert not problems, problems[0]


# Each sweep of the many-step points is cut into slices run one case after another, so that
# no test runs for more than about half a minute.
SLICES = {"git.ran": 11, "write.replaced": 2}


@pytest.mark.parametrize(
    ("point", "index"),
    [(point, index) for point, count in SLICES.items() for index in range(count)],
    ids=lambda value: str(value),
)
def test_a_workstation_frozen_at_every_step_lands_every_edit_once(
    point: str, index: int, trace: Counter[str], pg_server: Any, tmp_path: Path
) -> None:
    ks = list(range(1, trace[point] + 1, EVERY))[index :: SLICES[point]]
    assert ks, f"the traced run has too few {point} steps for slice {index}"
    problems: list[str] = []
    for k in ks:
        dsn = pg_server.fresh()
        try:
            problems += pause_case(tmp_path / f"k{k}", dsn, point, k)
        finally:
            pg_server.drop(dsn)
    assert not problems, "\n\n".join(problems)


def _story(team: Team) -> str:
    """What happened, for a failure: the base's history and the tasks' events."""
    log = git(team.remote, "log", "--format=%h %s", "--graph", "--all")
    kinds = [
        f"{e['type']} {e.get('task_id', '')} {e.get('phase', '')} {e.get('outcome', '')} "
        f"{e.get('holder', '')}"
        for e in team.events(*_STORY_EVENTS)
    ]
    return log + "\n" + "\n".join(kinds)


_STORY_EVENTS = (
    "claim.acquired",
    "task.claim_lost",
    "task.self_fenced",
    "merge.fenced",
    "phase.started",
    "phase.completed",
    "phase.failed",
    "phase.stopped",
    "phase.leftovers_kept",
    "task.taken_over",
    "task.merged",
    "task.requeued",
    "task.swept",
    "merge.started",
    "task.dispatched",
)
