"""``council run`` piped or redirected (nohup, CI): one timestamped line per task transition
as it happens, then the summary; with ``--json`` those lines go to stderr and stdout stays the
JSON report."""

from __future__ import annotations

import json
import re
from pathlib import Path

from tests.support.cli_process_helpers import council
from tests.support.council_process import task, write_config
from tests.support.scheduler_helpers import new_repo

_LINE = re.compile(r"^\d\d:\d\d:\d\d ")


def test_a_piped_run_says_each_transition_as_it_happens(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(
        tmp_path, repo, task("one", "WRITE one.txt 1") + task("two", "WRITE two.txt 2")
    )
    done = council("run", config, cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    progress = [line for line in lines if _LINE.match(line)]
    said = [line[9:] for line in progress]
    assert said[0].startswith("run s-") and said[0].endswith(" started")
    for task_id in ("one", "two"):
        started = said.index(next(s for s in said if s.startswith(f"{task_id}: attempt 1 ")))
        landed = said.index(next(s for s in said if s.startswith(f"{task_id}: landed on main")))
        assert started < landed
    assert said[-1].endswith("finished: completed")
    # The summary follows the progress lines, and nothing is a Python dict.
    assert lines.index(progress[-1]) < len(lines) - 1
    assert "{'" not in done.stdout + done.stderr


def test_with_json_the_progress_goes_to_stderr(tmp_path: Path) -> None:
    repo = new_repo(tmp_path)
    config = write_config(tmp_path, repo, task("one", "WRITE one.txt 1"))
    done = council("run", config, "--json", cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["totals"]["done"] == 1
    assert any(
        _LINE.match(line) and "one: landed on main" in line for line in done.stderr.splitlines()
    )
