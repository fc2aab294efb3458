"""Verified completion through the real ``council run``: a task whose verify command fails is
never merged, whatever its CLI says; it fails once its retries are used up, its branch keeps
the work, and the base does not change. A task that passes the same check lands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from tests.support.scheduler_helpers import merged_tasks, new_repo
from tests.support.timing import patience
from tests.support.worktree_helpers import git

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]

# The check fails while any top-level .txt file says BROKEN; it runs in the task's worktree.
CHECK = (
    "import pathlib, sys; "
    "bad = sorted(p.name for p in pathlib.Path('.').glob('*.txt') if 'BROKEN' in p.read_text()); "
    "sys.exit('BROKEN in ' + ', '.join(bad) if bad else 0)"
)

CONFIG = f"""\
repo: repo
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: 2}}
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 1, backoff_initial: 0.05, backoff_max: 0.2}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 30}}
verify:
  - [python3, -c, {json.dumps(CHECK)}]
tasks:
  - {{id: good, prompt: "WRITE good.txt all fine", files: [good.txt]}}
  - {{id: broken, prompt: "WRITE broken.txt BROKEN on purpose\\nSAY Done, all tests pass.",
      files: [broken.txt]}}
"""


def test_a_task_failing_verify_is_not_merged_and_keeps_its_branch(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(CONFIG)
    base_before = git(repo, "rev-parse", "main")

    done = subprocess.run(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"},
        timeout=patience(60),
    )

    assert done.returncode == 1, done.stderr[-3000:]  # some task did not end done
    report = json.loads(done.stdout)
    tasks = {t["task_id"]: t for t in report["tasks"]}
    assert tasks["good"]["status"] == "done"
    broken = tasks["broken"]
    assert broken["status"] == "failed"
    assert broken["attempts"] == 2  # the first try and max_retries: 1
    assert broken["merged_commit"] is None
    assert "verify command" in broken["error"] and "BROKEN in broken.txt" in broken["error"]

    # Only the good task landed: one merge on top of the old base, bringing only its file.
    assert merged_tasks(repo) == ["good"]
    assert git(repo, "rev-parse", "main~1") == base_before
    changed = git(repo, "diff", "--name-only", base_before, "main").split()
    assert changed == ["good.txt"]
    assert "Council-Task: broken" not in git(repo, "log", "--format=%B", "main")

    # The failed task's work is kept on its branch, committed, for a human to look at.
    branch = broken["branch"]
    assert branch and git(repo, "rev-parse", "--verify", f"refs/heads/{branch}")
    assert git(repo, "show", f"{branch}:broken.txt") == "BROKEN on purpose"
    assert git(repo, "merge-base", "--is-ancestor", base_before, branch) == ""


# A verify command that leaves files behind, as real ones do (reports, caches, a dump of the
# environment it ran with): they are no CLI's work and must never land with the task.
LEAVES_FILES = (
    "import os, pathlib; pathlib.Path('report.txt').write_text('ok'); "
    "pathlib.Path('good.txt').write_text('rewritten by verify')"
)


def test_what_a_verify_command_leaves_is_never_committed(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = tmp_path / "run.yaml"
    config.write_text(
        CONFIG.split("verify:")[0]
        + f"verify:\n  - [python3, -c, {json.dumps(LEAVES_FILES)}]\n"
        + "tasks:\n  - {id: good, prompt: 'WRITE good.txt all fine', files: [good.txt]}\n"
    )
    done = subprocess.run(
        [*COUNCIL, "run", str(config), "--json"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"},
        timeout=patience(60),
    )
    assert done.returncode == 0, done.stderr[-3000:]
    assert merged_tasks(repo) == ["good"]
    assert git(repo, "show", "main:good.txt") == "all fine"
    assert git(repo, "ls-tree", "--name-only", "main").split() == [
        "README.md",
        "good.txt",
        "shared.txt",
    ]
    lines = (repo / ".council" / "events.jsonl").read_text().splitlines()
    events = [json.loads(line) for line in lines]
    discarded = [e["data"]["paths"] for e in events if e["type"] == "verify.discarded"]
    assert discarded and all(sorted(paths) == ["good.txt", "report.txt"] for paths in discarded)
