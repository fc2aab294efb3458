"""``council cancel``, ``checkpoint``, ``worktrees``, ``clean`` and ``status --watch`` as a user
runs them: after (or during) real runs of the scripted CLI, through typer's runner and as real
processes, checking exit codes, output and what each command did to the store and the repo."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import anyio
from typer.testing import CliRunner, Result

from orchestrator.cli.app import app
from orchestrator.config.load import load_config
from orchestrator.council import Council
from orchestrator.models import SessionRecord, TaskState, utcnow
from orchestrator.spend.line import SpendLine
from orchestrator.state import FileStateStore
from tests.support.cli_process_helpers import spawn
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience
from tests.support.worktree_helpers import git

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]

CONFIG = """\
repo: repo
adapters:
  fast: {type: scripted, options: {delay: 0}}
default_adapter: fast
capacity: {sessions: 2}
workflow: {phases: [{name: build}]}
retry: {backoff_initial: 0.05, backoff_max: 0.2}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 5}
tasks:
"""

TWO_SLOW_AND_AFTER = """\
  - {id: slow-a, prompt: "SLEEP 30\\nWRITE a.txt done"}
  - {id: slow-b, prompt: "SLEEP 30\\nWRITE b.txt done"}
  - {id: after, prompt: "WRITE after.txt done", depends_on: [slow-b]}
"""


# -- helpers ------------------------------------------------------------------------------


def write_config(tmp_path: Path, tasks: str, name: str = "run.yaml") -> Path:
    """A run config beside ``repo`` (made on first use; later configs share it)."""
    if not (tmp_path / "repo").exists():
        new_repo(tmp_path)
    path = tmp_path / name
    path.write_text(CONFIG + tasks)
    return path


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, [str(arg) for arg in args])


def council(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, *map(str, args)],
        cwd=cwd,
        capture_output=True,
        text=True,
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"},
        timeout=patience(60),
    )


def start_only(config: Path) -> str:
    """A session of ``config`` with every task queued and nothing dispatched (a run that was
    never started); its id."""

    async def start() -> str:
        async with Council.from_config(config) as running:
            return await running.scheduler.start()

    return anyio.run(start)


def in_store(config: Path, action: Any) -> Any:
    """``await action(store)`` on the store of ``config``."""

    async def go() -> Any:
        async with FileStateStore(load_config(config).state_dir) as store:
            return await action(store)

    return anyio.run(go)


def task_state(config: Path, task_id: str) -> TaskState | None:
    state: TaskState | None = in_store(config, lambda store: store.get_task_state(task_id))
    return state


def status_of(config: Path, task_id: str) -> str | None:
    state = task_state(config, task_id)
    return None if state is None else str(state.status)


def session_ids(config: Path) -> set[str]:
    return {p.name for p in (load_config(config).state_dir / "sessions").iterdir()}


def wait_for(condition: Any, timeout: float = 30) -> None:
    deadline = time.monotonic() + patience(timeout)
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def branch_exists(repo: Path, ref: str) -> bool:
    argv = ["git", "-C", str(repo), "rev-parse", "--verify", "-q", ref]
    found = subprocess.run(argv, capture_output=True)
    return found.returncode == 0


def session_worktrees(config: Path) -> list[dict[str, Any]]:
    listed = invoke("worktrees", "list", config, "--json")
    assert listed.exit_code == 0, listed.output
    return [w for w in json.loads(listed.stdout) if w["kind"] == "session"]


# -- checkpoint and cancel ----------------------------------------------------------------


def test_checkpoint_round_trip_undoes_a_cancel_and_the_run_resumes(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '  - {id: first, prompt: "WRITE first.txt one"}\n'
        '  - {id: second, prompt: "WRITE second.txt two", depends_on: [first]}\n',
    )
    sid = start_only(config)

    created = invoke("checkpoint", "create", config, "--reason", "before-cancel", "--json")
    assert created.exit_code == 0, created.output
    info = json.loads(created.stdout)
    assert (info["session_id"], info["reason"], info["task_count"]) == (sid, "before-cancel", 2)

    cancelled = invoke("cancel", config, "second")
    assert cancelled.exit_code == 0, cancelled.output
    assert cancelled.stdout.strip() == f"cancelled task second of session {sid} (it was queued)"
    state = task_state(config, "second")
    assert state is not None and state.status == "cancelled"

    listed = invoke("checkpoint", "list", config, "--json")
    assert [c["checkpoint_id"] for c in json.loads(listed.stdout)] == [info["checkpoint_id"]]
    table = invoke("checkpoint", "list", config)
    assert "before-cancel" in table.stdout and "1 checkpoint\n" in table.stdout

    restored = invoke("checkpoint", "restore", config, info["checkpoint_id"])
    assert restored.exit_code == 0, restored.output
    assert restored.stdout.splitlines() == [
        f"restored session {sid} from checkpoint {info['checkpoint_id']}: active, 2 queued",
        f"continue it with: council resume {config}",
    ]
    state = task_state(config, "second")
    assert state is not None and state.status == "queued"

    resumed = invoke("resume", config, "--json")
    assert resumed.exit_code == 0, resumed.output
    report = json.loads(resumed.stdout)
    assert report["session_id"] == sid
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "first": "done",
        "second": "done",
    }


def test_unknown_ids_exit_2_and_a_finished_task_exits_1(tmp_path: Path) -> None:
    config = write_config(tmp_path, '  - {id: only, prompt: "WRITE only.txt x"}\n')
    nothing = invoke("cancel", config, "only")
    assert nothing.exit_code == 2  # the config names a repository with no run
    state_dir = load_config(config).state_dir
    assert nothing.stderr.strip() == f"error: no run has been recorded in {state_dir}"

    sid = start_only(config)
    unknown = invoke("cancel", config, "nope")
    assert unknown.exit_code == 2
    assert unknown.stderr.strip() == (
        f"error: task 'nope' is not part of session {sid} (its tasks: only)"
    )
    bad_id = invoke("cancel", config, "Not An Id")
    assert bad_id.exit_code == 2 and "task id" in bad_id.stderr
    assert len(bad_id.stderr.strip().splitlines()) == 1

    assert invoke("cancel", config, "only").exit_code == 0
    again = invoke("cancel", config, "only", "--session", sid)
    assert again.exit_code == 1
    assert again.stderr.strip() == (
        "error: task 'only' already ended (cancelled); there is nothing to cancel"
    )

    missing = invoke("checkpoint", "restore", config, "ck-nope")
    assert missing.exit_code == 2 and "checkpoint 'ck-nope' does not exist" in missing.stderr
    other = invoke("checkpoint", "create", config, "--session", "s-nope")
    assert other.exit_code == 2 and "session 's-nope' does not exist" in other.stderr


def test_a_live_run_refuses_a_restore_and_takes_cancel_requests(tmp_path: Path) -> None:
    config = write_config(tmp_path, TWO_SLOW_AND_AFTER)
    run = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: status_of(config, "slow-a") == status_of(config, "slow-b") == "running")
        (sid,) = session_ids(config)

        created = council("checkpoint", "create", config, "--json", cwd=tmp_path)
        assert created.returncode == 0, created.stderr
        checkpoint_id = json.loads(created.stdout)["checkpoint_id"]
        refused = council("checkpoint", "restore", config, checkpoint_id, cwd=tmp_path)
        assert refused.returncode == 1
        host = os.uname().nodename
        assert refused.stderr.strip() == (
            f"error: session {sid} is being run by process {run.pid} on {host}; "
            "stop it (Ctrl-C) before restoring a checkpoint"
        )

        pruned = invoke("worktrees", "prune", config)
        assert pruned.exit_code == 0, pruned.output
        assert f"session {sid} is being run by process {run.pid}" in pruned.stderr
        assert sorted(w["task_id"] for w in session_worktrees(config)) == ["slow-a", "slow-b"]

        watch = spawn("status", config, "--watch", cwd=tmp_path)
        assert watch.stdout is not None
        assert watch.stdout.readline() == "slow-a: running (build)\n"
        watch.send_signal(signal.SIGINT)
        _, watch_err = watch.communicate(timeout=patience(30))
        assert watch.returncode == 130 and "interrupted" in watch_err

        # Queued: cancelled at once, even while the run goes on.
        after = invoke("cancel", config, "after")
        assert after.exit_code == 0, after.output
        assert after.stdout.strip() == f"cancelled task after of session {sid} (it was queued)"

        # Running: the orchestrator is asked, and ends it at its next tick.
        requested = invoke("cancel", config, "slow-a", "--json")
        assert requested.exit_code == 0, requested.output
        outcome = json.loads(requested.stdout)
        assert outcome["action"] == "requested" and outcome["previous_status"] == "running"
        assert outcome["process"]["pid"] == run.pid
        wait_for(lambda: status_of(config, "slow-a") == "cancelled")
        assert status_of(config, "slow-b") == "running"
    finally:
        run.send_signal(signal.SIGINT)
        out, err = run.communicate(timeout=patience(30))
    assert run.returncode == 130, err
    assert json.loads(out)["status"] == "interrupted"

    # The run was interrupted: its worktrees survive a prune, since `council resume` continues
    # in them, and a task left queued is cancelled at once.
    pruned = invoke("worktrees", "prune", config)
    assert pruned.exit_code == 0 and pruned.stderr == "", pruned.output
    assert "slow-b" in [w["task_id"] for w in session_worktrees(config)]
    assert status_of(config, "slow-b") == "queued"
    last = council("cancel", config, "slow-b", cwd=tmp_path)
    assert last.returncode == 0, last.stderr
    assert last.stdout.strip() == f"cancelled task slow-b of session {sid} (it was queued)"
    report = json.loads(invoke("status", config, "--json").stdout)
    assert {t["task_id"]: t["status"] for t in report["tasks"]} == {
        "slow-a": "cancelled",
        "slow-b": "cancelled",
        "after": "cancelled",
    }


# -- worktrees ----------------------------------------------------------------------------


def test_worktrees_list_and_prune_after_a_finished_run(tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '  - {id: merged, prompt: "WRITE merged.txt x"}\n'
        '  - {id: gone, prompt: "AUTH_ERROR"}\n'
        '  - {id: kept, prompt: "WRITE kept.txt y\\nAUTH_ERROR"}\n',
    )
    repo = tmp_path / "repo"
    finished = invoke("run", config, "--json")
    assert finished.exit_code == 1, finished.output

    worktrees = {w["task_id"]: w for w in session_worktrees(config)}
    assert sorted(worktrees) == ["gone", "kept"]  # the merged task's worktree was removed
    kept = worktrees["kept"]
    assert kept["ours"] and kept["locked"] and not kept["prunable"]
    assert kept["branch"] == "council/kept/1"
    table = council("worktrees", "list", config, cwd=tmp_path)
    assert table.returncode == 0, table.stderr
    # Piped: the plain layout, one line per worktree, path first.
    main_row = next(line for line in table.stdout.splitlines() if " main " in line)
    assert main_row.split()[0] == "."
    assert "gone" in table.stdout and "kept" in table.stdout

    shutil.rmtree(worktrees["gone"]["path"])
    pruned = invoke("worktrees", "prune", config)
    assert pruned.exit_code == 0, pruned.output
    lines = pruned.stdout.splitlines()
    gone_sid, kept_sid = worktrees["gone"]["session_id"], worktrees["kept"]["session_id"]
    dropped = "its directory was gone, git's record of it is dropped"
    assert f"pruned .council/worktrees/{gone_sid}: {dropped}" in lines
    removal = f"removed the worktree of session {kept_sid} (.council/worktrees/{kept_sid})"
    rescue = f"branch council/kept/1 kept, tip saved at refs/council/rescue/{kept_sid}"
    assert any(line.startswith(removal) and line.endswith(rescue) for line in lines), lines
    assert session_worktrees(config) == []
    assert not Path(kept["path"]).exists()
    # Nothing is lost: `gone` never committed anything, so its branch went; `kept` did.
    assert "branch council/gone/1 deleted (main has all its commits)" in pruned.stdout
    assert branch_exists(repo, "council/kept/1")
    assert git(repo, "show", "council/kept/1:kept.txt").strip() == "y"

    again = invoke("worktrees", "prune", config, "--json")
    assert again.exit_code == 0
    assert json.loads(again.stdout)["report"]["removed"] == []
    quiet = invoke("worktrees", "prune", config)
    assert quiet.stdout == "nothing to prune\n"


def test_worktrees_prune_recovers_a_worktree_whose_admin_dir_was_deleted(tmp_path: Path) -> None:
    # A CLI deleted the kept worktree's `.git/worktrees/<name>`: its edits are loose files git
    # no longer knows. Prune gives it back to git first, then keeps its work as for any other.
    config = write_config(tmp_path, '  - {id: kept, prompt: "WRITE kept.txt y\\nAUTH_ERROR"}\n')
    repo = tmp_path / "repo"
    assert invoke("run", config, "--json").exit_code == 1
    (kept,) = session_worktrees(config)
    path = Path(kept["path"])
    (path / "loose.txt").write_text("edited after the run\n")
    gitfile = (path / ".git").read_text().removeprefix("gitdir: ").strip()
    shutil.rmtree(gitfile)

    pruned = invoke("worktrees", "prune", config)
    assert pruned.exit_code == 0, pruned.output
    sid = kept["session_id"]
    recovered = f"recovered session {sid} ({path}): its admin directory {sid} recreated on "
    assert any(line.startswith(recovered) for line in pruned.stdout.splitlines()), pruned.stdout
    assert f"tip saved at refs/council/rescue/{sid}" in pruned.stdout
    assert "git does not know it" not in pruned.output
    rescued = f"refs/council/rescue/{sid}"
    assert git(repo, "show", f"{rescued}:loose.txt").strip() == "edited after the run"
    assert git(repo, "show", f"{rescued}:kept.txt").strip() == "y"
    assert not path.exists()


# -- clean --------------------------------------------------------------------------------


def test_clean_removes_only_old_finished_sessions(tmp_path: Path) -> None:
    old = write_config(
        tmp_path,
        '  - {id: a-done, prompt: "WRITE a.txt x"}\n'
        '  - {id: a-failed, prompt: "WRITE a-failed.txt y\\nAUTH_ERROR"}\n',
        name="old.yaml",
    )
    repo = tmp_path / "repo"
    assert invoke("run", old).exit_code == 1
    (old_sid,) = session_ids(old)
    old_session: SessionRecord = in_store(old, lambda store: store.get_session(old_sid))
    cutoff = timedelta(seconds=2)
    wait_for(lambda: utcnow() - old_session.updated_at > cutoff * 1.1)

    young = write_config(tmp_path, '  - {id: c-one, prompt: "WRITE c.txt x"}\n', name="c.yaml")
    young_sid = start_only(young)
    in_store(young, lambda store: store.update_session(young_sid, {"status": "completed"}))
    active = write_config(tmp_path, '  - {id: b-one, prompt: "WRITE b.txt x"}\n', name="b.yaml")
    active_sid = start_only(active)
    failed_worktree = next(w for w in session_worktrees(old) if w["task_id"] == "a-failed")

    cleaned = invoke("clean", old, "--older-than", "2s")
    assert cleaned.exit_code == 0, cleaned.output
    assert cleaned.stdout.splitlines()[-1] == (
        "removed 1 finished session older than 2s, 1 worktree of finished runs "
        "(1 unmerged branch kept), 0 vanished worktrees, 0 stale lock files and 0 expired records"
    )
    assert session_ids(old) == {young_sid, active_sid}
    assert task_state(old, "a-done") is None and task_state(old, "a-failed") is None
    assert task_state(young, "c-one") is not None and task_state(active, "b-one") is not None
    assert not Path(failed_worktree["path"]).exists()
    assert branch_exists(repo, "council/a-failed/1")
    assert branch_exists(repo, f"refs/council/rescue/{failed_worktree['session_id']}")

    # Even with no age limit, an unfinished session stays.
    everything = invoke("clean", old, "--older-than", "0", "--json")
    assert everything.exit_code == 0, everything.output
    assert json.loads(everything.stdout)["sessions_removed"] == 1
    assert session_ids(old) == {active_sid}

    bad = invoke("clean", old, "--older-than", "soon")
    assert bad.exit_code == 2
    assert bad.stderr.startswith("error: --older-than: 'soon' is not a duration")
    assert len(bad.stderr.strip().splitlines()) == 1


# -- status --watch -----------------------------------------------------------------------


def test_status_watch_follows_a_run_until_it_finishes(tmp_path: Path) -> None:
    gate = tmp_path / "gate"  # task one builds until the watcher has seen it running
    config = write_config(
        tmp_path,
        f'  - {{id: one, prompt: "WAIT_FOR {gate}\\nWRITE one.txt x"}}\n'
        '  - {id: two, prompt: "WRITE two.txt y"}\n',
    )
    # The CLI waits for the test's gate: the sandbox shows it the test's directory.
    config.write_text(f"sandbox: {{read: [{tmp_path}]}}\n" + config.read_text())
    run = spawn("run", config, "--json", cwd=tmp_path)
    try:
        wait_for(lambda: status_of(config, "one") == "running")
        watcher = spawn("status", config, "--watch", cwd=tmp_path)
        assert watcher.stdout is not None
        seen: list[str] = []
        while "one: running (build)" not in seen:
            line = watcher.stdout.readline()
            assert line, f"the watcher ended before it showed task one running: {seen}"
            seen.append(line.rstrip("\n"))
        gate.touch()
        rest, errors = watcher.communicate(timeout=patience(60))
    finally:
        gate.touch()
        ran, _ = run.communicate(timeout=patience(60))
    assert run.returncode == 0
    assert watcher.returncode == 0, errors
    lines = [*seen, *rest.splitlines()]
    assert "one: done" in lines, lines
    assert lines.index("one: running (build)") < lines.index("one: done")
    # Its last frame is the run's final record, not one read after the last task ended but
    # before the run wrote its session (``active, 2/2 done``, fewer calls than it made).
    report = json.loads(ran)
    title = f"session {report['session_id']}: completed, 2/2 done, "
    assert any(line.startswith(title) for line in lines), lines
    assert lines[-1] == SpendLine.model_validate(report["spend"]).said(), lines

    # On a finished run it returns at once, with the run's exit code and report.
    done = invoke("status", config, "--watch", "--json")
    assert done.exit_code == 0, done.output
    assert json.loads(done.stdout)["totals"]["done"] == 2
