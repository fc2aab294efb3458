"""A base branch checked out with uncommitted changes (the user's main checkout, mid-edit):
said once before the run starts, with the user's choice (``--if-base-dirty``): ``stop`` starts
nothing, ``wait`` lands each task once the checkout is clean (``council status`` says why it
waits meanwhile), ``detach`` moves the checkout off the branch, changes kept, and lands on the
branch alone. Real git, the real ``council`` process."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from tests.support.cli_process_helpers import council, reap, spawn, wait_for
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience

WARNING = "README.md in {}: finished tasks wait to land until then; commit or stash them there"


def _git(repo: Path, *args: str) -> str:
    return subprocess.run(
        ["git", "-C", str(repo), *args], check=True, capture_output=True, text=True
    ).stdout.strip()


def _dirty_repo(tmp_path: Path) -> tuple[Path, Path]:
    repo = new_repo(tmp_path)
    (repo / "README.md").write_text("hello\nmy edit, not committed\n")
    config = write_config(
        tmp_path, repo, task("one", "WRITE one.txt 1") + task("two", "WRITE two.txt 2")
    )
    return repo, config


def test_stop_starts_nothing_and_says_why(tmp_path: Path) -> None:
    repo, config = _dirty_repo(tmp_path)
    main_before = _git(repo, "rev-parse", "main")
    done = council("run", config, "--if-base-dirty", "stop", cwd=tmp_path)
    assert done.returncode == 2, done.stderr
    assert done.stderr.count(WARNING.format(repo)) == 1
    assert "not started (--if-base-dirty stop); nothing was changed" in done.stderr
    assert not (repo / ".council").exists()
    assert _git(repo, "rev-parse", "main") == main_before
    assert (repo / "README.md").read_text() == "hello\nmy edit, not committed\n"


def test_wait_says_it_once_shows_why_in_status_and_lands_once_clean(tmp_path: Path) -> None:
    repo, config = _dirty_repo(tmp_path)
    process = spawn("run", config, cwd=tmp_path)
    try:

        def waiting() -> dict[str, str]:
            shown = council("status", config, "--json", cwd=tmp_path)
            if shown.returncode != 0:
                return {}
            tasks = json.loads(shown.stdout)["tasks"]
            return {t["task_id"]: t["waiting"] or "" for t in tasks if t["status"] == "merging"}

        wait_for(lambda: len(waiting()) == 2, "both tasks waiting to land")
        assert all("uncommitted changes to README.md" in why for why in waiting().values())
        table = council("status", config, cwd=tmp_path).stdout
        assert "merging:" in table and "uncommitted" in table  # the status column says why
        _git(repo, "stash")  # the user puts the edit aside: the run goes on by itself
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)
    assert process.returncode == 0, err
    assert err.count(WARNING.format(repo)) == 1  # before the start, once
    said = out.splitlines()
    for task_id in ("one", "two"):
        assert sum(f"{task_id}: waiting to land" in line for line in said) == 1
    assert _git(repo, "show", "main:one.txt") == "1"
    assert _git(repo, "show", "main:two.txt") == "2"
    assert (repo / "one.txt").exists()  # the checkout followed the branch once clean


def test_detach_keeps_the_changes_and_lands_on_the_branch_alone(tmp_path: Path) -> None:
    repo, config = _dirty_repo(tmp_path)
    head_before = _git(repo, "rev-parse", "HEAD")
    done = council("run", config, "--if-base-dirty", "detach", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "your changes kept there" in done.stderr
    assert f"git -C {repo} switch main" in done.stderr
    # The checkout is detached where it was, the edit untouched; main has both tasks.
    assert _git(repo, "rev-parse", "HEAD") == head_before
    assert subprocess.run(["git", "-C", str(repo), "symbolic-ref", "-q", "HEAD"]).returncode == 1
    assert (repo / "README.md").read_text() == "hello\nmy edit, not committed\n"
    assert _git(repo, "show", "main:one.txt") == "1"
    assert _git(repo, "show", "main:two.txt") == "2"
