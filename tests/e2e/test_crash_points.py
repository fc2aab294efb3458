"""SIGKILL at every named crash point (``orchestrator.safety.crashpoints``), then ``council
resume``.

Each test starts a real ``council run`` process with ``COUNCIL_CRASH_AT`` set, checks that it
died by SIGKILL at that very point (a point the run never reached fails the test: the run
would have ended by itself), resumes the run to the end and runs the invariant checker
(``tests/support/invariants.py``): every task done, no commit lost, nothing merged twice, no record
version gone back, no conflict marker, no process and no lock of the dead run left.

The soak (``--soak``) does the same 200 times from a seeded random (point, count), killing the
resumes too (up to three kills in a row) before the last resume.
"""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from orchestrator.safety.crashpoints import ENV, POINTS
from tests.support import invariants
from tests.support.council_process import task
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
BASE_ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}
BASE_ENV.pop(ENV, None)

# Three small tasks, the third waiting for the first to land, so a kill can find one task
# merged, one merging and one not started. stale_threshold is far longer than a test: a
# resume that waited for the dead run's leases would time out rather than pass.
CONFIG = """\
repo: repo
adapters:
  cli: {type: scripted, options: {delay: 0}}
default_adapter: cli
capacity: {sessions: 2}
workflow: {phases: [{name: plan}, {name: build}]}
retry: {max_retries: 3, backoff_initial: 0.02, backoff_max: 0.1}
scheduler: {tick: 0.02, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
"""
IDS = ["one", "two", "three"]


TASKS = "".join(
    task(name, f"WRITE {name}.txt {name}", after="one" if name == "three" else None)
    for name in ("one", "two", "three")
)

# (point, nth): where each default test kills the run. The counts put the kill in the middle
# of the run (a first task landed or landing) where the run reaches the point more than once;
# a run of these tasks makes about 70 durable writes.
KILLS = [
    ("batch.record_opened", 2),
    ("claim.before_record", 1),
    ("claim.recorded", 3),
    ("write.temp_written", 30),
    ("write.fsynced", 25),
    ("write.replaced", 40),
    ("git.ran", 45),
    ("cli.spawned", 3),
    ("ledger.opened", 3),
    ("ledger.closed", 3),
    ("phase.ended", 4),
    ("phase.completed", 2),
    ("checkpoint.written", 1),
    ("merge.asked", 2),
    ("merge.locked", 1),
    ("merge.committed", 1),
    ("merge.ref_updated", 2),
    ("merge.recorded", 1),
]
# A checkpoint is written when a run stops gracefully: that run gets a SIGTERM first.
STOPPED_FIRST = {"checkpoint.written"}


def setup_run(tmp_path: Path) -> tuple[Path, Path]:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG + TASKS)
    return repo, config


class CouncilProcess(subprocess.Popen[str]):
    events_from = 0  # where this process's events begin in events.jsonl


def council(
    tmp_path: Path, command: str, config: Path, crash_at: str | None = None
) -> CouncilProcess:
    events = tmp_path / "repo" / ".council" / "events.jsonl"
    env = dict(BASE_ENV)
    if crash_at is not None:
        env[ENV] = crash_at
    process = CouncilProcess(
        [*COUNCIL, command, str(config), "--json"],
        cwd=tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    process.events_from = events.stat().st_size if events.exists() else 0
    return process


def started_a_phase(process: CouncilProcess, repo: Path) -> bool:
    """Has ``process`` started a phase (its signal handlers are in place by then)?"""
    path = repo / ".council" / "events.jsonl"
    if not path.exists():
        return False
    with path.open("rb") as events:
        events.seek(process.events_from)
        return b'"phase.started"' in events.read()


def crashed(process: CouncilProcess, repo: Path, point: str) -> tuple[bool, str]:
    """Wait for the process to end; (killed at ``point``, what it printed). Where the point
    is only reached by a graceful stop, the process gets a SIGTERM once it runs a phase."""
    if point in STOPPED_FIRST:
        deadline = time.monotonic() + 60
        while not started_a_phase(process, repo) and process.poll() is None:
            if time.monotonic() > deadline:
                process.kill()
                raise TimeoutError("the run started no phase within 60s")
            time.sleep(0.01)
        process.send_signal(signal.SIGTERM)
    try:
        out, err = process.communicate(timeout=patience(90))
    except subprocess.TimeoutExpired:
        process.kill()
        out, err = process.communicate()
        raise
    killed = process.returncode == -signal.SIGKILL and f"crash point {point} reached" in err
    return killed, out[-3000:] + err[-3000:]


def next_command(repo: Path) -> str:
    """``resume`` once the killed run recorded its session, else ``run`` again."""
    return "resume" if invariants.recorded_sessions(repo) else "run"


def to_the_end(tmp_path: Path, repo: Path, config: Path) -> dict[str, Any]:
    resumed = council(tmp_path, next_command(repo), config)
    out, err = resumed.communicate(timeout=patience(120))
    assert resumed.returncode == 0, out[-4000:] + err[-4000:]
    report: dict[str, Any] = json.loads(out)
    return report


def finished_everything(tmp_path: Path, repo: Path, config: Path) -> None:
    before = invariants.snapshot(repo)
    report = to_the_end(tmp_path, repo, config)
    assert report["status"] == "completed"
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == dict.fromkeys(IDS, "done")
    invariants.check(repo, before=before, all_done=True, root=tmp_path)


_PULL_CRASHES = (
    "test_pull_landing.py::test_a_crash_around_the_pull_request_opens_and_merges_it_once"
)
# Points this run never reaches, each killed by a test of its own.
ELSEWHERE = {
    "sample.half_made": "test_sample_repo.py::"
    "test_a_kill_while_the_sample_is_built_leaves_nothing_a_later_run_refuses",
    # A run of many tasks paused while it records them, then stopped (SIGINT) there.
    "start.batch_recorded": "test_start_many.py::"
    "test_status_shows_a_starting_run_and_a_ctrl_c_while_recording_stops_it",
    # A team's first workstation paused before its tasks are recorded: a joiner records them.
    "start.session_recorded": "test_team_run.py::"
    "test_a_workstation_joining_before_the_tasks_are_recorded_records_them",
    # Landing by pull request (a run with a forge): the fake GitHub's own crash test.
    **dict.fromkeys(("pull.intent", "pull.opened", "pull.merged"), _PULL_CRASHES),
    # A stacked pull request retargeted once the one below it merged (issue 52).
    "pull.retarget": "test_pull_stack.py::"
    "test_a_kill_in_the_middle_of_a_retarget_then_resume_lands_everything_once",
    # Killed after the CLI said what it spent: the resume closes its call from its log.
    "ledger.closing": "test_spend_settle.py::"
    "test_a_call_killed_before_its_close_is_closed_from_its_log_at_what_it_said",
}


def test_every_crash_point_has_a_test() -> None:
    assert sorted([*(point for point, _ in KILLS), *ELSEWHERE]) == sorted(POINTS)


@dataclass(frozen=True)
class KilledRun:
    root: Path
    repo: Path
    config: Path
    killed: bool  # by SIGKILL at its crash point
    output: str


def kill_run(root: Path, point: str, nth: int) -> KilledRun:
    repo, config = setup_run(root)
    run = council(root, "run", config, f"{point}:{nth}")
    killed, output = crashed(run, repo, point)
    return KilledRun(root, repo, config, killed, f"ended {run.returncode}\n{output}")


@pytest.fixture(scope="module")
def killed_runs(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[dict[str, Future[KilledRun]]]:
    """The runs the selected kill tests need, killed one after another in a background thread
    in the order the tests come: while a test resumes one, the next is being killed (two
    council processes at a time, one per core; each startup costs a second of CPU)."""
    wanted = [
        item.callspec.params["point"]
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == KILL_TEST
    ]
    nths = dict(KILLS)
    with ThreadPoolExecutor(max_workers=1) as pool:
        yield {
            point: pool.submit(kill_run, tmp_path_factory.mktemp(point), point, nths[point])
            for point in wanted
        }
        pool.shutdown(cancel_futures=True)


@pytest.mark.parametrize(("point", "nth"), KILLS, ids=[p for p, _ in KILLS])
def test_sigkill_at_crash_point_then_resume_finishes_everything(
    killed_runs: dict[str, Future[KilledRun]], point: str, nth: int
) -> None:
    run = killed_runs[point].result(timeout=patience(100))
    assert run.killed, f"the run did not die at {point}:{nth}: {run.output}"
    invariants.check(run.repo, settled=False)  # as the kill left it: nothing lost or twice
    finished_everything(run.root, run.repo, run.config)


KILL_TEST = test_sigkill_at_crash_point_then_resume_finishes_everything.__name__


def test_killed_at_its_first_write_the_session_resumes_and_records_its_tasks(
    tmp_path: Path,
) -> None:
    # The first durable write is the session's record: it lists every task, none of them
    # recorded yet (they follow in batches). `council resume` records them and runs them.
    repo, config = setup_run(tmp_path)
    run = council(tmp_path, "run", config, "write.replaced:1")
    killed, output = crashed(run, repo, "write.replaced")
    assert killed, output
    assert len(invariants.recorded_sessions(repo)) == 1
    invariants.check(repo, settled=False)
    finished_everything(tmp_path, repo, config)


def test_a_mistyped_crash_point_is_refused_naming_the_known_ones(tmp_path: Path) -> None:
    _, config = setup_run(tmp_path)
    run = council(tmp_path, "run", config, "merge.landed")
    out, err = run.communicate(timeout=patience(60))
    assert run.returncode == 2, out + err
    assert "unknown crash point 'merge.landed'" in err
    assert all(point in err for point in POINTS)
    assert not (tmp_path / "repo" / ".council" / "state" / "sessions").exists()  # ran nothing


@pytest.mark.slow
@pytest.mark.timeout(3 * 3600)  # 200 iterations of up to four council processes each
def test_soak_random_crash_points_then_resume(tmp_path: Path) -> None:
    rng = random.Random(20240611)
    points = sorted(POINTS)
    for iteration in range(200):
        root = tmp_path / f"i{iteration}"
        root.mkdir()
        repo, config = setup_run(root)
        command, finished = "run", False
        for _ in range(rng.randint(1, 3)):
            point = rng.choice(points)
            # A stopped run writes one checkpoint; a run makes about 70 durable writes.
            most = 1 if point in STOPPED_FIRST else 80 if point.startswith("write.") else 4
            nth = rng.randint(1, most)
            process = council(root, command, config, f"{point}:{nth}")
            killed, output = crashed(process, repo, point)
            where = f"iteration {iteration}: {command} with {point}:{nth}"
            if not killed:
                # The count was past the end of the run: it ended by itself, every task done.
                assert process.returncode == 0, f"{where} ended {process.returncode}\n{output}"
                finished = True
                break
            # Between kills: nothing merged twice or lost, nothing stranded or blocking; the
            # dead run's CLIs may still run until the next resume stops them.
            invariants.check(repo, settled=False)
            command = next_command(repo)
        if finished:
            invariants.check(repo, all_done=True, root=root)
        else:
            finished_everything(root, repo, config)
