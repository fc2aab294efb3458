"""``council demo --forge``: the issue-to-pull-request loop offline, as a newcomer runs it. A
real ``council`` process: two labelled issues on the fake GitHub become tasks and pull
requests, the demo's reviewer asks for one change on each, the fix is built in the same CLI
conversation and pushed to the same pull request, then approved, merged and the issue closed."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

from tests.support.cli_process_helpers import COUNCIL, ENV
from tests.support.merge_repo import git
from tests.support.timing import patience


def demo(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, "demo", "--forge", "--dir", "here", *args],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(120),
    )


def test_the_forge_demo_closes_each_issue_through_a_reviewed_pull_request(tmp_path: Path) -> None:
    done = demo(tmp_path)

    assert done.returncode == 0, done.stderr + done.stdout
    said = done.stdout + done.stderr
    for issue in (r"#1 \(Add a greeting\)", r"#2 \(Say where to start\)"):
        # Pull request numbers follow the order the two were opened in.
        shown = rf"issue {issue}: closed; pull request #\d+ merged after reviews: "
        assert re.search(shown + "changes requested, approved", said), said
    assert "got feedback (changes asked for by demo-reviewer; 1 review comment(s))" in said
    # What the issues asked for and what the reviewer asked for, both on the remote's base.
    origin = tmp_path / "here" / "forge" / "origin.git"
    assert git(origin, "show", "main:GREETING.txt") == "Hello, reader!"
    assert git(origin, "show", "main:README.md").endswith("The project greets you in GREETING.txt.")
    assert git(origin, "show", "main:START.txt") == "Read README.md first."
    assert git(origin, "show", "main:NEXT.txt") == "Then read textkit/words.py."


def test_run_again_it_starts_afresh_and_json_is_the_report(tmp_path: Path) -> None:
    assert demo(tmp_path).returncode == 0
    again = demo(tmp_path, "--json")
    assert again.returncode == 0, again.stderr
    report = json.loads(again.stdout)
    assert [t["status"] for t in report["tasks"]] == ["done", "done"]
    assert all(t["pull"]["state"] == "merged" for t in report["tasks"])
    # Every issue closed and landed: the run ended as a run does (it said "interrupted").
    assert report["status"] == "completed"


def test_a_directory_it_did_not_make_is_never_touched(tmp_path: Path) -> None:
    mine = tmp_path / "here" / "forge" / "notes.txt"
    mine.parent.mkdir(parents=True)
    mine.write_text("mine")
    refused = demo(tmp_path)
    assert refused.returncode == 2, refused.stderr
    assert "is not a forge demo's directory" in refused.stderr
    assert mine.read_text() == "mine" and sorted(mine.parent.iterdir()) == [mine]
