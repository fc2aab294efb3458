"""What a run asks of GitHub: API requests per task from issue to merge, and per pull request
in each poll while it waits, counted on the fake GitHub (``orchestrator.testing.fake_github``)
over a real bare repository, with ``council`` as a real process and the offline scripted CLI.

1. **Issue to merge** (the happy path): ``--tasks`` labelled issues; ``council run`` reads
   them, builds each, pushes its branch and opens one pull request per task, tells each issue,
   and ends waiting for reviews; each pull request is approved and its check passes; ``council
   resume`` merges them and tells the issues. Every request the two commands made, per task,
   full answers and 304s apart. Goal (issue 31): at most 12 per task. ``landing.poll`` is at
   its default (30 s), as a user has it: a pull request opened while others still build is
   not looked at again before the run ends (each such look is what part 2 measures).
2. **Waiting**: the pull requests approved, their checks still running, so ``council resume``
   keeps following them every ``poll``; after its first look at each (a new process has no
   ETags yet), ``--polls`` more looks are counted, then it is stopped. Requests per pull
   request per look, full answers and 304s (GitHub does not count a 304 against the rate
   limit). Goal: at most one full read per pull request per change, so none while nothing
   changes.

    python bench/forge_requests_bench.py [--tasks 4] [--polls 10]
"""

from __future__ import annotations

import argparse
import functools
import json
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from team_common import BASE, COUNCIL, ENV, clone, make_remote

from orchestrator.testing.fake_github import FakeGitHub
from orchestrator.testing.fake_github.records import RecordedRequest

TOKEN = "ghp_benchToken0123456789abcdefghijklmnop"
OWNER, NAME = "bench", "widgets"
POLL = 0.2  # part 2's landing.poll: many looks in a short bench
DEFAULT_POLL = 30  # landing.poll's default, part 1's

CONFIG = """\
repo: repo
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: 4}}
workflow: {{phases: [{{name: build}}]}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}}
forge: {{repo: {owner}/{name}, api_url: "{api_url}", token: "${{GH_TOKEN}}"}}
landing: {{via: pull_request, approvals: 1, checks: required, merge: auto, poll: {poll}}}
sources:
  - issues: {{labels: [council], poll: 60}}
tasks: []
"""


Say = Callable[[str], None]


def council(command: str, config: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COUNCIL, command, str(config)],
        cwd=config.parent,
        capture_output=True,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
        timeout=600,
        check=False,
    )


def counted(requests: list[RecordedRequest]) -> tuple[int, int]:
    """(full answers, 304s)."""
    not_modified = sum(r.status == 304 for r in requests)
    return len(requests) - not_modified, not_modified


def pulls_of(gh: FakeGitHub) -> list[int]:
    return [n for n, record in gh.site.issues.items() if record.pull is not None]


def issue_to_merge(gh: FakeGitHub, config: Path, tasks: int, say: Say) -> dict[str, float]:
    text = config.read_text()
    config.write_text(text.replace(f"poll: {POLL}}}", f"poll: {DEFAULT_POLL}}}"))
    for n in range(tasks):
        gh.create_issue(f"Note {n}", body=f"WRITE notes/{n}.txt note {n}\n", labels=["council"])
    gh.clear_requests()
    first = council("run", config)
    if first.returncode != 1 or len(pulls_of(gh)) != tasks:
        raise SystemExit(f"the run did not open {tasks} pull requests: {first.stderr[-2000:]}")
    opened = list(gh.requests)
    for number in pulls_of(gh):
        gh.add_review(number, "reviewer", "APPROVED")
        gh.set_check_run(gh.site.head_sha(number), "ci", conclusion="success")
    gh.clear_requests()
    second = council("resume", config)
    if second.returncode != 0:
        raise SystemExit(f"the resume did not merge them all: {second.stderr[-2000:]}")
    merged = list(gh.requests)
    config.write_text(text)
    total = opened + merged
    full, cached = counted(total)
    say(f"issue to merge, {tasks} tasks (happy path, landing.poll {DEFAULT_POLL}s):")
    say(
        f"  council run (issues read, built, pushed, pull requests opened, issues told):"
        f" {len(opened)} requests"
    )
    say(f"  council resume (reviews and checks read, merged, issues told): {len(merged)}")
    say(
        f"  per task: {len(total) / tasks:.1f} requests ({full / tasks:.1f} full, "
        f"{cached / tasks:.1f} answered 304); goal at most 12"
    )
    figures = {"run_requests": len(opened), "resume_requests": len(merged)}
    return {**figures, "per_task": len(total) / tasks, "full_per_task": full / tasks}


def waiting(gh: FakeGitHub, config: Path, tasks: int, polls: int, say: Say) -> dict[str, float]:
    for n in range(tasks):
        gh.create_issue(f"Wait {n}", body=f"WRITE waits/{n}.txt wait {n}\n", labels=["council"])
    before = set(pulls_of(gh))
    if council("run", config).returncode != 1:
        raise SystemExit("the run did not end waiting for reviews")
    waiting_pulls = sorted(set(pulls_of(gh)) - before)
    for number in waiting_pulls:
        gh.add_review(number, "reviewer", "APPROVED")
        gh.set_check_run(gh.site.head_sha(number), "ci", status="in_progress", conclusion=None)
    gh.clear_requests()
    follower = subprocess.Popen(
        [*COUNCIL, "resume", str(config)],
        cwd=config.parent,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
    )
    # The first look at each pull request reads it whole (a new process has no ETags yet);
    # the looks after it are what is measured.
    wait_for_looks(gh, waiting_pulls, 1, follower)
    settled = len(gh.requests)
    wait_for_looks(gh, waiting_pulls, 1 + polls, follower)
    follower.send_signal(signal.SIGINT)
    follower.communicate(timeout=120)
    window = gh.requests[settled:]
    full, cached = counted(window)
    per = len(waiting_pulls) * polls
    say(
        f"waiting, {len(waiting_pulls)} pull requests approved with CI running, "
        f"{polls} looks at each after the first:"
    )
    say(
        f"  per pull request per look: {len(window) / per:.2f} requests "
        f"({full / per:.2f} full, {cached / per:.2f} answered 304); goal: no full read "
        "while nothing changes"
    )
    return {"per_pull_per_look": len(window) / per, "full_per_pull_per_look": full / per}


def wait_for_looks(
    gh: FakeGitHub, numbers: list[int], looks: int, follower: subprocess.Popen[str]
) -> None:
    """Until the follower has looked at each of ``numbers`` ``looks`` times (a look reads the
    pull request first)."""
    deadline = time.monotonic() + 300
    while True:
        seen = [
            sum(r.method == "GET" and r.path.endswith(f"/pulls/{n}") for r in gh.requests)
            for n in numbers
        ]
        if min(seen) >= looks:
            return
        if follower.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"the follower stopped looking ({seen} looks of {looks})")
        time.sleep(POLL / 4)


def main(tasks: int, polls: int, as_json: bool) -> None:
    say: Say = functools.partial(print, file=sys.stderr if as_json else sys.stdout)
    with tempfile.TemporaryDirectory(prefix="council-forge-bench-") as tmp:
        root = Path(tmp)
        remote = make_remote(root)
        clone(remote, root / "repo")
        people = {"reviewer": "COLLABORATOR"}  # a person with write access
        with FakeGitHub(
            remote, owner=OWNER, repo=NAME, token=TOKEN, default_branch=BASE, people=people
        ) as gh:
            config = root / "run.yaml"
            config.write_text(CONFIG.format(owner=OWNER, name=NAME, api_url=gh.api_url, poll=POLL))
            figures = {
                "issue_to_merge": issue_to_merge(gh, config, tasks, say),
                "waiting": waiting(gh, config, tasks, polls, say),
            }
    if as_json:
        print(json.dumps({"tasks": tasks, "polls": polls, **figures}, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=4)
    parser.add_argument("--polls", type=int, default=10, help="looks measured per pull request")
    parser.add_argument("--quick", action="store_true", help="2 tasks, 3 polls (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.tasks, args.polls = 2, 3
    sys.exit(main(args.tasks, args.polls, args.json))
