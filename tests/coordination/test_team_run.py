"""Several workstations on one queue, as real processes: ``council run`` in three clones of one
bare remote, one PostgreSQL database (``pg_dsn``), ``scripted`` CLIs. Whatever happens to one
workstation, every task lands on the remote's base exactly once and nothing is lost."""

from __future__ import annotations

import json
import signal
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest

from orchestrator.safety.crashpoints import ENV as ENV_AT
from orchestrator.safety.crashpoints import SIGNAL_ENV
from tests.support.council_process import paused
from tests.support.team_helpers import Team, team_task, wait_for

pytestmark = pytest.mark.postgres


def _expected(count: int) -> list[str]:
    return [f"t{n:02d}" for n in range(1, count + 1)]


def _holders(report: dict[str, object]) -> set[str]:
    tasks = report.get("tasks")
    assert isinstance(tasks, list)
    return {":".join(str(t["holder"]).split(":")[:2]) for t in tasks if t.get("holder")}


def test_three_workstations_land_thirty_tasks_once(pg_dsn: str, tmp_path: Path) -> None:
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=0.3) for n in range(1, 31)]
    for name in ("a", "b", "c"):
        team.workstation(name, tasks, sessions=2)
    try:
        for name in ("a", "b", "c"):
            team.start(name)
        results = {name: team.finish(name, timeout=120) for name in ("a", "b", "c")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        if code != 0:
            bad = [t["task_id"] for t in report["tasks"] if t["status"] != "done"]
            with psycopg.connect(pg_dsn) as conn:
                rows = conn.execute(
                    "SELECT type, data FROM council.events WHERE data->>'task_id' = ANY(%s) "
                    "OR data->>'task' = ANY(%s) OR data->>'key' = ANY(%s) ORDER BY id",
                    (bad, bad, bad),
                ).fetchall()
            for row in rows:
                print(row)
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 30
        assert report["team"]
    assert sorted(team.landed_tasks()) == _expected(30)  # each exactly once
    files = team.base_files()
    assert files == {f"tasks/{t}.txt": f"done {t}" for t in _expected(30)}
    # The queue was shared: more than one workstation ran tasks.
    assert len(_holders(results["a"][1])) >= 2
    # Any workstation's status shows the whole run, who held each task, and the team.
    status = team.council("status", str(tmp_path / "b.yaml"), "--json")
    assert status.returncode == 0, status.stderr
    shown = json.loads(status.stdout)
    assert shown["totals"]["done"] == 30 and shown["team"] == results["a"][1]["team"]
    table = team.council("status", str(tmp_path / "c.yaml"))
    assert f"(team {shown['team']})" in table.stdout
    assert "no workstation is working in this run now" in table.stdout
    # No workstation's config path goes to the team's database (it names nothing elsewhere).
    with psycopg.connect(pg_dsn) as conn:
        kept = [row[0] for row in conn.execute("SELECT doc->'metadata' FROM council.sessions")]
    assert kept and not any("config" in metadata for metadata in kept), kept


def test_a_killed_workstation_loses_nothing(pg_dsn: str, tmp_path: Path) -> None:
    team = Team(tmp_path, pg_dsn)
    # Builds long enough that b is surely in the middle of some when it is killed.
    tasks = [team_task(n, sleep=3.0) for n in range(1, 10)]
    for name in ("a", "b", "c"):
        team.workstation(name, tasks, sessions=2, heartbeat=0.3, stale=2.0)
    try:
        for name in ("a", "b", "c"):
            team.start(name)
        wait_for(lambda: _running_on(team, "b"), "workstation b to run a task", 60)
        team.signal("b", signal.SIGKILL)
        results = {name: team.finish(name, timeout=120) for name in ("a", "c")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 9
    assert sorted(team.landed_tasks()) == _expected(9)
    assert len(team.base_files()) == 9
    # b's claims lapsed on the database's clock and another workstation swept them.
    # What b held when it died was taken over by the others once its lease lapsed on the
    # database's clock (swept back to the queue, or claimed again straight away).
    orphaned = _held_at_the_end(team, "b")
    assert orphaned, "b held no claim when it was killed"
    for task_id in orphaned:
        later = [e for e in team.events("claim.acquired") if e["task_id"] == task_id]
        assert f":{team.processes['b'].pid}:" not in later[-1]["holder"]


def test_a_paused_workstation_is_fenced_and_merges_nothing_twice(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=1.0) for n in range(1, 9)]
    for name in ("a", "b"):
        team.workstation(name, tasks, sessions=2, heartbeat=0.3, stale=2.0)
    try:
        team.start("a")
        team.start("b")
        wait_for(lambda: _running_on(team, "b"), "workstation b to run a task", 60)
        team.signal("b", signal.SIGSTOP)  # a GC pause, a laptop lid: past its lease
        code_a, report_a, err_a = team.finish("a", timeout=120)
        team.signal("b", signal.SIGCONT)
        code_b, _report_b, err_b = team.finish("b", timeout=60)
    finally:
        team.stop_all()
    assert code_a == 0, err_a[-2000:]
    assert report_a["totals"]["done"] == 8
    # b came back after its claims were taken over: whatever it tried to write or push was
    # refused, and its run ends without landing anything a second time.
    assert code_b == 0, err_b[-2000:]
    assert sorted(team.landed_tasks()) == _expected(8)
    assert len(team.base_files()) == 8
    taken = [
        e for e in team.events("claim.acquired") if f":{team.processes['a'].pid}:" in e["holder"]
    ]
    assert taken, "a never claimed anything"
    # ... and once continued it learned that it lost them (its own lease clock ran out, or the
    # store refused its renewal or its landing), and wrote nothing under them.
    lost = {
        e["task_id"] for e in team.events("task.self_fenced", "task.claim_lost", "merge.fenced")
    }
    assert lost, "the paused workstation never noticed it was fenced"
    # ... and said so in words on its stderr, not as the event's raw data.
    assert "warning: " in err_b and "{'" not in err_b, err_b[-2000:]


def test_a_human_push_mid_run_is_kept_and_landings_rebuild_on_it(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=0.5) for n in range(1, 9)]
    for name in ("a", "b"):
        team.workstation(name, tasks, sessions=2)
    human = tmp_path / "human"
    try:
        team.start("a")
        team.start("b")
        wait_for(lambda: len(team.landed_tasks()) >= 2, "two landings", 60)
        team.human_push(human, "HUMAN.md", "a person was here\n")
        results = {name: team.finish(name, timeout=120) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, _report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
    assert sorted(team.landed_tasks()) == _expected(8)
    assert team.show("HUMAN.md") == "a person was here"
    assert len(team.base_files()) == 8


def test_the_database_restarted_mid_run(pg_dsn: str, pg_server: object, tmp_path: Path) -> None:
    from tests.support.pg_tier import TestDatabase

    assert isinstance(pg_server, TestDatabase)
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=0.5) for n in range(1, 11)]
    for name in ("a", "b"):
        team.workstation(name, tasks, sessions=2)
    try:
        team.start("a")
        team.start("b")
        wait_for(lambda: len(team.landed_tasks()) >= 2, "two landings", 60)
        pg_server.restart()
        results = {name: team.finish(name, timeout=120) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 10
    assert sorted(team.landed_tasks()) == _expected(10)


def _running_on(team: Team, name: str) -> bool:
    """Workstation ``name`` holds a live claim on some task (read through ``council
    status`` of its own config)."""
    status = team.council("status", str(team.root / f"{name}.yaml"), "--json", timeout=30)
    if status.returncode != 0:
        return False
    report = json.loads(status.stdout)
    pid = str(team.processes[name].pid)
    return any(
        t.get("status") == "running"
        and t.get("lease_expires")
        and str(t.get("holder", "")).split(":")[1:2] == [pid]
        for t in report.get("tasks", [])
    )


def _held_at_the_end(team: Team, name: str) -> set[str]:
    """The tasks workstation ``name`` claimed and never released (nor renewed to the end)."""
    pid = f":{team.processes[name].pid}:"
    held: set[str] = set()
    for event in team.events("claim.acquired", "claim.released"):
        if pid not in event["holder"]:
            continue
        if event["type"] == "claim.acquired":
            held.add(event["task_id"])
        else:
            held.discard(event["task_id"])
    return held


def test_a_database_away_longer_than_the_lease(
    pg_dsn: str, pg_server: object, tmp_path: Path
) -> None:
    from tests.support.pg_tier import TestDatabase

    assert isinstance(pg_server, TestDatabase)
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=1.5) for n in range(1, 7)]
    for name in ("a", "b"):
        team.workstation(name, tasks, sessions=2, heartbeat=0.3, stale=3.0)
    try:
        team.start("a")
        team.start("b")
        # Both running before the database goes: a workstation still starting meets no
        # database and exits at once (seen once on a loaded machine: b, started second,
        # had not connected yet when a's first task made the test stop the server).
        wait_for(
            lambda: _running_on(team, "a") and _running_on(team, "b"),
            "both workstations to run a task",
            60,
        )
        pg_server.stop()
        time.sleep(5)  # longer than the 3 s lease: every running session must fence itself
        pg_server.start()
        results = {name: team.finish(name, timeout=120) for name in ("a", "b")}
    finally:
        team.stop_all()
    for name, (code, report, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-2000:]}"
        assert report["totals"]["done"] == 6
    errors = results["a"][2] + results["b"][2]
    # Each session running then fenced itself (its claim not renewed in time), found it could
    # record nothing (its CLI done meanwhile), or was refused by the database once it was back
    # (its lease had lapsed): either way it wrote nothing more under that claim.
    signs = ("fenced itself", "cannot be recorded", "its claim lapsed", "its claim no longer holds")
    assert any(sign in errors for sign in signs), errors[-3000:]
    assert sorted(team.landed_tasks()) == _expected(6)


def test_council_resume_in_another_clone_finishes_a_dead_workstations_run(
    pg_dsn: str, tmp_path: Path
) -> None:
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=1.5) for n in range(1, 7)]
    team.workstation("a", tasks, sessions=2, heartbeat=0.3, stale=2.0)
    team.workstation("b", tasks, sessions=2, heartbeat=0.3, stale=2.0)
    try:
        team.start("a")
        wait_for(lambda: _running_on(team, "a"), "workstation a to run a task", 60)
        team.signal("a", signal.SIGKILL)  # the only workstation: nobody takes over by itself
        resumed = team.council("resume", str(tmp_path / "b.yaml"), "--json", timeout=120)
    finally:
        team.stop_all()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["totals"]["done"] == 6 and report["team"]
    assert sorted(team.landed_tasks()) == _expected(6)


def test_a_resume_on_the_host_of_a_dead_workstation_takes_its_claims_back_at_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    # A lease of ten minutes: waited out, the resume would outlast the test's own time limit.
    team = Team(tmp_path, pg_dsn)
    tasks = [team_task(n, sleep=1.5) for n in range(1, 4)]
    team.workstation("a", tasks, sessions=2, heartbeat=0.3, stale=600.0)
    team.workstation("b", tasks, sessions=2, heartbeat=0.3, stale=600.0)
    try:
        team.start("a")
        wait_for(lambda: _running_on(team, "a"), "workstation a to run a task", 60)
        team.signal("a", signal.SIGKILL)  # its presence record and claims stay behind
        dead = f"{team.processes['a'].pid}"
        team.processes["a"].wait(timeout=30)
        resumed = team.council("resume", str(tmp_path / "b.yaml"), "--json", timeout=90)
    finally:
        team.stop_all()
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    report = json.loads(resumed.stdout)
    assert report["totals"]["done"] == 3 and report["team"]
    assert sorted(team.landed_tasks()) == _expected(3)
    # Given back by the resume, named as the dead workstation's: not waited out.
    swept = team.events("task.swept")
    assert swept and all(e["holder"].split(":")[1] == dead for e in swept), swept


def _six_at_once(team: Team, names: list[str]) -> dict[str, tuple[int, dict[str, Any], str]]:
    try:
        for name in names:
            team.start(name)
        results = {name: team.finish(name, timeout=60) for name in names}
    finally:
        team.stop_all()
    for name, (code, _, err) in results.items():
        assert code == 0, f"workstation {name}: {err[-3000:]}"
        assert "Traceback" not in err, err[-3000:]
    return results


def test_six_workstations_joining_at_once_share_one_session(pg_dsn: str, tmp_path: Path) -> None:
    # Measured before: one run in three ended a workstation with a raw UniqueViolation
    # (tasks_pkey, from add_session_tasks) when six started together.
    team = Team(tmp_path, pg_dsn)
    names = [f"w{n}" for n in range(6)]
    for name in names:
        team.workstation(name, [team_task(n, sleep=0.5) for n in range(1, 13)], sessions=2)
    results = _six_at_once(team, names)
    assert len({report["session_id"] for _, report, _ in results.values()}) == 1
    assert sorted(team.landed_tasks()) == _expected(12)  # each exactly once


def test_six_workstations_again_on_a_run_that_landed_all_end(pg_dsn: str, tmp_path: Path) -> None:
    # The team's run ended with every task landed; six start it again at once. The first
    # session ends at once (all landed), so a late one starts another, which takes the tasks
    # over while workstations that joined the first are still in it: they used to take the
    # records back ("its record was missing"), each run undoing the other's for ever. Now a
    # workstation whose session a teammate ended leaves it (run.left), and nothing runs twice.
    team = Team(tmp_path, pg_dsn)
    names = [f"w{n}" for n in range(6)]
    for name in names:
        team.workstation(name, [team_task(n) for n in range(1, 9)], sessions=2)
    _six_at_once(team, names)
    _six_at_once(team, names)
    assert sorted(team.landed_tasks()) == _expected(8)  # each exactly once
    assert not team.events("task.record_recreated")


def test_a_workstation_joining_before_the_tasks_are_recorded_records_them(
    pg_dsn: str, tmp_path: Path
) -> None:
    # The team's first workstation pauses right after its session is recorded, before any
    # task's record (its recorder writes them in batches). One joining then used to take every
    # task for lost and start each afresh one by one ("its record was missing"), racing the
    # creator's own batch into a raw UniqueViolation (CI, six at once). Now the joiner records
    # the session's unrecorded tasks itself, beside the creator, and each lands once.
    team = Team(tmp_path, pg_dsn)
    for name in ("a", "b"):
        team.workstation(name, [team_task(n) for n in range(1, 5)], sessions=2)
    try:
        pausing = {ENV_AT: "start.session_recorded", SIGNAL_ENV: "SIGSTOP"}
        first = team.start("a", env=pausing)
        wait_for(lambda: paused(first.pid), "workstation a paused before recording", 60)
        team.start("b")
        code_b, report_b, err_b = team.finish("b", timeout=90)
        team.signal("a", signal.SIGCONT)
        code_a, report_a, err_a = team.finish("a", timeout=60)
    finally:
        team.stop_all()
    assert code_b == 0, err_b[-3000:]
    assert report_b["session_id"] == report_a["session_id"]
    assert code_a == 0, err_a[-3000:]
    assert "Traceback" not in err_a + err_b
    assert sorted(team.landed_tasks()) == _expected(4)  # each exactly once
    assert not team.events("task.record_recreated")
