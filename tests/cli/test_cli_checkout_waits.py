"""A landing that waits for the user's checkout says what it waits for and the way out, the
same line in the run's output, its ``merge.waiting`` event and ``council status``; a wait
longer than ``landing.wait_timeout`` ends the task ``waiting_for_checkout`` (branch kept, the
run over, exit 1) and ``council resume`` lands it once the checkout is cleared. Real git, the
real ``council`` process, the scripted CLI."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

from tests.support.cli_process_helpers import council, events, reap, spawn, wait_for
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo
from tests.support.timing import patience


def _git(repo: Path, *args: str, check: bool = True) -> str:
    done = subprocess.run(["git", "-C", str(repo), *args], capture_output=True, text=True)
    if check and done.returncode != 0:
        raise AssertionError(f"git {' '.join(args)}: {done.stderr}")
    return done.stdout.strip()


def _config(tmp_path: Path, repo: Path, *, wait_timeout: str | None = None) -> Path:
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    if wait_timeout is not None:
        text = config.read_text().replace(
            "tasks:\n", f"landing: {{wait_timeout: {wait_timeout}}}\ntasks:\n"
        )
        config.write_text(text)
    return config


def _status(config: Path, cwd: Path) -> dict[str, Any]:
    shown = council("status", config, "--json", cwd=cwd)
    if shown.returncode not in (0, 1, 130):
        return {}
    tasks: list[dict[str, Any]] = json.loads(shown.stdout)["tasks"]
    return tasks[0] if tasks else {}  # the session on record, its task not yet (``recording``)


def _waiting_line(config: Path, cwd: Path) -> str:
    task_report = _status(config, cwd)
    if task_report.get("status") != "merging":
        return ""
    return str(task_report.get("waiting") or "")


def _said_waiting(repo: Path) -> list[str]:
    return [e["data"]["message"] for e in events(repo) if e["type"] == "merge.waiting"]


def _rebase_stopped(repo: Path) -> None:
    """The user's checkout of main in the middle of a rebase that stopped on a conflict."""
    (repo / "README.md").write_text("main side\n")
    _git(repo, "commit", "-q", "-am", "main side")
    _git(repo, "switch", "-q", "-c", "upstream", "main~1")
    (repo / "README.md").write_text("upstream side\n")
    _git(repo, "commit", "-q", "-am", "upstream side")
    _git(repo, "switch", "-q", "main")
    _git(repo, "rebase", "upstream", check=False)  # stops on the conflict, HEAD detached
    assert (repo / ".git" / "rebase-merge").is_dir()


def test_untracked_file_in_the_way_is_named_in_output_event_and_status(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    (repo / "one.txt").write_text("the user's own one.txt\n")  # where task one writes
    config = _config(tmp_path, repo)
    line = (
        f"untracked file at {repo / 'one.txt'}, where the landing puts a file of its own: "
        f"move or delete {repo / 'one.txt'}"
    )
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: _waiting_line(config, tmp_path) == line, "status naming the file")
        assert _said_waiting(repo) == [line]  # the event says the same, once
        table = council("status", config, cwd=tmp_path).stdout
        assert f"merging: {line}" in table  # piped: every cell whole
        assert (repo / "one.txt").read_text() == "the user's own one.txt\n"
        (repo / "one.txt").unlink()  # the way out it named: the run goes on by itself
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)
    assert process.returncode == 0, err
    said = [entry.partition(" ")[2] for entry in out.splitlines()]  # after the time stamp
    assert said.count(f"one: waiting to land: {line}") == 1
    assert (
        _git(repo, "show", "main:one.txt") == "1" and (repo / "one.txt").read_text().strip() == "1"
    )


def test_rebase_in_progress_is_named_with_its_way_out(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    _rebase_stopped(repo)
    config = _config(tmp_path, repo)
    line = (
        f"rebase in progress in {repo}: finish it (git rebase --continue) or abort it "
        "(git rebase --abort)"
    )
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: _waiting_line(config, tmp_path) == line, "status naming the rebase")
        assert _said_waiting(repo) == [line]
        _git(repo, "rebase", "--abort")
        out, err = process.communicate(timeout=patience(60))
    finally:
        reap(process)
    assert process.returncode == 0, err
    # Said before the start too, in the same words, with what it means for the run.
    assert f"rebase in progress in {repo}: finished tasks wait to land until then" in err
    assert [entry.partition(" ")[2] for entry in out.splitlines()].count(
        f"one: waiting to land: {line}"
    ) == 1
    assert _git(repo, "show", "main:one.txt") == "1" and (repo / "one.txt").exists()


def test_merge_in_progress_past_the_timeout_ends_waiting_then_resume_lands(
    tmp_path: Path,
) -> None:
    repo = new_repo(tmp_path)
    _git(repo, "switch", "-q", "-c", "feature")
    (repo / "feature.txt").write_text("f\n")
    _git(repo, "add", "feature.txt")
    _git(repo, "commit", "-q", "-m", "feature")
    _git(repo, "switch", "-q", "main")
    _git(repo, "merge", "--no-commit", "--no-ff", "feature")  # the user's merge, not finished
    config = _config(tmp_path, repo, wait_timeout="1s")
    line = f"merge in progress in {repo}: finish it (git commit) or abort it (git merge --abort)"
    main_before = _git(repo, "rev-parse", "main")

    ran = council("run", config, cwd=tmp_path, timeout=60)

    assert ran.returncode == 1, ran.stderr  # ended by itself, not hung, not "interrupted"
    assert f"one did not land, its work is kept on council/one/1: {line}" in ran.stderr
    assert f"council resume {config}" in ran.stderr
    report = _status(config, tmp_path)
    assert report["status"] == "waiting_for_checkout" and report["waiting"] == line
    shown = council("status", config, cwd=tmp_path).stdout
    assert f"waiting_for_checkout: {line}" in shown
    stopped = [e["data"] for e in events(repo) if e["type"] == "task.waiting_for_checkout"]
    assert [(e["message"], e["branch"]) for e in stopped] == [(line, "council/one/1")]
    assert _git(repo, "rev-parse", "main") == main_before  # nothing landed
    assert _git(repo, "show", "council/one/1:one.txt") == "1"  # the work is on its branch
    assert (repo / ".git" / "MERGE_HEAD").exists()  # the user's merge untouched

    _git(repo, "merge", "--abort")
    resumed = council("resume", config, cwd=tmp_path, timeout=60)

    assert resumed.returncode == 0, resumed.stderr
    assert _status(config, tmp_path)["status"] == "done"
    assert (
        _git(repo, "show", "main:one.txt") == "1" and (repo / "one.txt").read_text().strip() == "1"
    )
    dispatched = [e for e in events(repo) if e["type"] == "task.dispatched"]
    assert len(dispatched) == 2  # the resume went on from the finished work
    assert [e["data"]["branch"] for e in dispatched] == ["council/one/1", "council/one/1"]
