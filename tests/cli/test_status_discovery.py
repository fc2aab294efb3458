"""``council status`` with no config finds the run meant: the one ``council run`` was started
for from this directory or one above it (the README demo's layout: the config in
``configs/``, the repository elsewhere), or the ``.council/state`` of the repository one stands
in, from any subdirectory; a team run through its remembered config. A no-op re-run still says
who landed each task. No run anywhere is one line and exit 2."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from orchestrator.cli.status.run_finder import runs_dir
from tests.support.cli_process_helpers import ENV
from tests.support.scheduler_helpers import new_repo
from tests.support.team_helpers import Team, team_task
from tests.support.terminal import in_terminal, piped
from tests.support.timing import patience

# Like configs/demo.yaml: the repository is named relative to the config's directory.
CONFIG = """\
repo: ../work/repo
adapters:
  alice: {type: scripted, options: {delay: 0}}
default_adapter: alice
workflow: {phases: [{name: build}]}
scheduler: {tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}
tasks:
  - {id: add-word-count, prompt: "WRITE words.txt x"}
  - {id: add-slugify, prompt: "WRITE slug.txt y"}
"""


def checkout(tmp_path: Path) -> Path:
    """A checkout with ``configs/run.yaml`` whose repository is ``work/repo`` in it."""
    root = tmp_path / "checkout"
    (root / "configs").mkdir(parents=True)
    (root / "docs").mkdir()
    (root / "configs" / "run.yaml").write_text(CONFIG)
    (root / "work").mkdir()
    new_repo(root / "work")
    (root / "work" / "repo" / "src").mkdir()
    return root


def state_env(tmp_path: Path, name: str = "state-home") -> dict[str, str]:
    return {**ENV, "XDG_STATE_HOME": str(tmp_path / name)}


def status_json(cwd: Path, env: dict[str, str]) -> tuple[dict[str, object], str]:
    shown = piped("status", "--json", cwd=cwd, env=env)
    assert shown.returncode == 0, shown.stderr
    return json.loads(shown.text), shown.stderr


def test_after_a_run_from_the_checkout_status_finds_it_there_and_below(tmp_path: Path) -> None:
    root, env = checkout(tmp_path), state_env(tmp_path)
    done = piped("run", "configs/run.yaml", "--json", cwd=root, env=env, timeout=patience(120))
    assert done.returncode == 0, done.stderr
    session = json.loads(done.text)["session_id"]
    config = root.resolve() / "configs" / "run.yaml"
    for where in (root, root / "docs", root / "work" / "repo" / "src"):
        report, said = status_json(where, env)
        assert report["session_id"] == session
        assert said.strip().startswith(f"status of the run of {config}, started from ")
    # One small record per directory, in the user's state directory: the checkout and the
    # repository; nothing is written into the checkout.
    records = [json.loads(p.read_text()) for p in runs_dir(env).iterdir()]
    assert sorted(r["directory"] for r in records) == sorted(
        [str(root.resolve()), str((root / "work" / "repo").resolve())]
    )
    assert not (root / ".council").exists()


def test_without_a_record_the_repository_you_stand_in_is_found(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    done = piped("run", "configs/run.yaml", "--json", cwd=root, env=state_env(tmp_path, "a"))
    assert done.returncode == 0, done.stderr
    elsewhere = state_env(tmp_path, "b")  # another user, or the records deleted
    repo = root / "work" / "repo"
    report, said = status_json(repo / "src", elsewhere)
    assert report["session_id"] == json.loads(done.text)["session_id"]
    assert said.strip() == f"status of the run kept in {repo.resolve() / '.council' / 'state'}"
    lost = piped("status", cwd=root, env=elsewhere)
    assert lost.returncode == 2


def test_a_directory_holding_its_own_council_yaml_shows_that_run(tmp_path: Path) -> None:
    # Before: a run remembered for a directory above was shown instead of this one's own.
    root, env = checkout(tmp_path), state_env(tmp_path)
    outer = piped("run", "configs/run.yaml", "--json", cwd=root, env=env, timeout=120)
    assert outer.returncode == 0, outer.stderr
    team = root / "docs"  # a directory of its own, with the config `council init` writes
    new_repo(team)
    (team / "council.yaml").write_text(CONFIG.replace("../work/repo", "repo"))
    inner = piped("run", "council.yaml", "--json", cwd=team, env=env, timeout=120)
    assert inner.returncode == 0, inner.stderr
    for record in runs_dir(env).iterdir():
        if json.loads(record.read_text())["directory"] == str(team.resolve()):
            record.unlink()  # as if run from elsewhere: only the file says which run it is

    report, said = status_json(team, env)

    assert report["session_id"] == json.loads(inner.text)["session_id"]
    assert said.strip() == f"status of the run of {(team / 'council.yaml').resolve()}"


@pytest.mark.parametrize("columns", [80, 160, None])
def test_no_run_anywhere_is_one_line_naming_where_it_looked(
    tmp_path: Path, columns: int | None
) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    env = state_env(tmp_path)
    if columns is None:
        shown = piped("status", cwd=empty, env=env)
        said = shown.stderr
    else:
        shown = in_terminal("status", cwd=empty, env=env, columns=columns)
        said = shown.text
    assert shown.returncode == 2
    assert said.strip() == (
        f"error: no run found from {empty.resolve()}: no `council run` was started there or in "
        "a directory above it, and none of them has a .council/state; pass the run config: "
        "council status <config>"
    )
    assert not (empty / ".council").exists()


def test_a_config_with_no_run_yet_is_exit_2(tmp_path: Path) -> None:
    root = checkout(tmp_path)
    shown = piped("status", "configs/run.yaml", cwd=root, env=state_env(tmp_path))
    assert shown.returncode == 2
    state = (root / "work" / "repo").resolve() / ".council" / "state"
    assert shown.stderr.strip() == (
        f"error: no run has been recorded in {state}; start one with: council run <config>"
    )


def test_a_no_op_rerun_still_says_who_landed_each_task(tmp_path: Path) -> None:
    root, env = checkout(tmp_path), state_env(tmp_path)
    first = piped("run", "configs/run.yaml", "--json", cwd=root, env=env, timeout=patience(120))
    assert first.returncode == 0, first.stderr
    before = {t["task_id"]: t for t in json.loads(first.text)["tasks"]}
    for _ in range(2):  # the second no-op run keeps what the first one carried over
        again = piped("run", "configs/run.yaml", cwd=root, env=env, timeout=patience(120))
        assert again.returncode == 0, again.stderr
        assert "already landed in" in again.text
    report, _ = status_json(root, env)
    assert report["session_id"] != json.loads(first.text)["session_id"]
    for task in report["tasks"]:
        landed = before[task["task_id"]]
        assert task["status"] == "done"
        for field in ("adapter", "branch", "attempts", "merged_commit", "duration_seconds"):
            assert task[field] == landed[field], field
        assert task["adapter"] == "alice" and task["branch"].startswith("council/")
    table = piped("status", cwd=root, env=env)
    row = next(line for line in table.lines if line.startswith("add-word-count "))
    assert row.split()[:5] == ["add-word-count", "done", "alice", "1", "council/add-word-count/1"]


@pytest.mark.postgres
def test_a_team_run_is_found_through_its_remembered_config(pg_dsn: str, tmp_path: Path) -> None:
    team = Team(tmp_path, pg_dsn)
    config = team.workstation("ws1", [team_task(1)])
    env = {**team.env(), "XDG_STATE_HOME": str(tmp_path / "state-home")}
    done = piped("run", config, "--json", cwd=team.root, env=env, timeout=patience(120))
    assert done.returncode == 0, done.stderr
    session = json.loads(done.text)["session_id"]
    for where in (team.root, team.root / "ws1"):
        report, _ = status_json(where, env)
        assert report["session_id"] == session and report["team"]
    assert os.listdir(runs_dir(env))


def test_a_run_forgets_the_records_of_directories_and_configs_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The records ``status`` finds runs by are one per directory; those whose directory or
    config file was deleted since could never be found again and used to be kept for ever:
    each run forgets them, and keeps the others."""
    from orchestrator.cli.status.run_finder import remember_run

    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    kept_dir, gone_dir = tmp_path / "kept", tmp_path / "gone"
    for directory in (kept_dir, gone_dir):
        directory.mkdir()
        (directory / "run.yaml").write_text("tasks: []\n")
    where = runs_dir(env)
    monkeypatch.setenv("XDG_STATE_HOME", env["XDG_STATE_HOME"])
    remember_run(kept_dir / "run.yaml", kept_dir, started_in=kept_dir)
    remember_run(gone_dir / "run.yaml", gone_dir, started_in=gone_dir)
    assert len(list(where.glob("*.json"))) == 2
    (gone_dir / "run.yaml").unlink()
    gone_dir.rmdir()
    remember_run(kept_dir / "run.yaml", kept_dir, started_in=kept_dir)
    records = [json.loads(p.read_text()) for p in where.glob("*.json")]
    assert [r["directory"] for r in records] == [str(kept_dir.resolve())]


def test_a_run_looks_at_a_few_records_only_and_the_gone_ones_still_go(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A run's start does not read every record ever remembered (1,000 records were 25 ms of
    each run): it looks at a few, picked at random, so the gone ones go over the next runs, and
    the records of directories still there are never forgotten."""
    from orchestrator.cli.status import run_finder

    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    monkeypatch.setenv("XDG_STATE_HOME", env["XDG_STATE_HOME"])
    where = runs_dir(env)
    kept = tmp_path / "kept"
    kept.mkdir()
    (kept / "run.yaml").write_text("tasks: []\n")
    run_finder.remember_run(kept / "run.yaml", kept, started_in=kept)
    for n in range(30):
        gone = tmp_path / f"gone{n}"
        gone.mkdir()
        (gone / "run.yaml").write_text("tasks: []\n")
        run_finder.remember_run(gone / "run.yaml", gone, started_in=gone)
    for n in range(30):
        (tmp_path / f"gone{n}" / "run.yaml").unlink()
        (tmp_path / f"gone{n}").rmdir()
    assert len(list(where.glob("*.json"))) == 31

    forgot = run_finder.forget_gone(where)
    assert run_finder._SWEPT - 1 <= forgot <= run_finder._SWEPT  # 8 looked at, 30 in 31 gone
    assert len(list(where.glob("*.json"))) == 31 - forgot
    for _ in range(40):  # the next runs' looks: every gone record goes, the kept one stays
        run_finder.forget_gone(where)
    records = [json.loads(p.read_text()) for p in where.glob("*.json")]
    assert [r["directory"] for r in records] == [str(kept.resolve())]
