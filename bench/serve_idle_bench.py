"""What ``council serve`` costs while nothing happens: CPU per idle minute of the ``council
serve`` process (its children included), against a bare script process that does only what
serving an issue tracker needs while it is idle: one conditional read of the labelled issues
every ``poll`` (GitHub answers 304, which costs no rate limit).

Both talk to the fake GitHub (``orchestrator.testing.fake_github``, in this process) over a
real bare remote; ``council serve`` is a real process with the offline scripted CLI, its
sources and ``landing.poll`` at ``--poll`` seconds, no issue labelled, so it stays idle. Each
round starts the process, waits until it has read the issues once (start-up is not idle
time), then measures its CPU over ``--window`` seconds. Rounds alternate, serve then floor;
the ratio is of the medians.

    python bench/serve_idle_bench.py [--rounds 3] [--window 20] [--poll 2]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil
from team_common import BASE, COUNCIL, ENV, clone, make_remote

from orchestrator.testing.fake_github import FakeGitHub

TOKEN = "ghp_benchToken0123456789abcdefghijklmnop"
OWNER, NAME = "bench", "widgets"

CONFIG = """\
repo: repo
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
workflow: {{phases: [{{name: build}}]}}
forge: {{repo: {owner}/{name}, api_url: "{api_url}", token: "${{GH_TOKEN}}"}}
landing: {{via: pull_request, approvals: 1, checks: required, merge: auto, poll: {poll}}}
sources:
  - issues: {{labels: [council], poll: {poll}}}
tasks: []
"""

# The floor: the labelled issues read every POLL seconds, conditionally, until stopped.
FLOOR = """\
import signal, sys, time, urllib.error, urllib.request
url, token, poll = sys.argv[1], sys.argv[2], float(sys.argv[3])
signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
etag = None
while True:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    if etag:
        request.add_header("If-None-Match", etag)
    try:
        with urllib.request.urlopen(request) as answer:
            etag = answer.headers.get("ETag")
            answer.read()
    except urllib.error.HTTPError as error:
        if error.code != 304:
            raise
    time.sleep(poll)
"""


def issue_reads(gh: FakeGitHub) -> int:
    return sum(r.method == "GET" and r.path.split("?")[0].endswith("/issues") for r in gh.requests)


def cpu(process: psutil.Process) -> float:
    """CPU seconds of ``process`` and its living children."""
    total = 0.0
    for one in [process, *process.children(recursive=True)]:
        try:
            times = one.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def measure(command: list[str], cwd: Path, gh: FakeGitHub, window: float) -> float:
    """CPU seconds per idle minute of ``command``, measured after its first issue read."""
    before = issue_reads(gh)
    child = subprocess.Popen(
        command,
        cwd=cwd,
        env={**ENV, "GH_TOKEN": TOKEN},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        process = psutil.Process(child.pid)
        deadline = time.monotonic() + 120
        while issue_reads(gh) == before:
            if child.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"{command[-1]}: never read the issues: {child.stderr}")
            time.sleep(0.05)
        time.sleep(1.0)  # what the first read started settles
        start = cpu(process)
        time.sleep(window)
        used = cpu(process) - start
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.communicate(timeout=60)
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
    return used * 60.0 / window


def main(rounds: int, window: float, poll: float, as_json: bool) -> None:
    with tempfile.TemporaryDirectory(prefix="council-serve-bench-") as tmp:
        root = Path(tmp)
        remote = make_remote(root)
        clone(remote, root / "repo")
        people = {"reviewer": "COLLABORATOR"}  # a person with write access
        with FakeGitHub(
            remote, owner=OWNER, repo=NAME, token=TOKEN, default_branch=BASE, people=people
        ) as gh:
            config = root / "serve.yaml"
            config.write_text(CONFIG.format(owner=OWNER, name=NAME, api_url=gh.api_url, poll=poll))
            floor_script = root / "floor.py"
            floor_script.write_text(FLOOR)
            issues_url = f"{gh.api_url}/repos/{OWNER}/{NAME}/issues?labels=council&state=open"
            served: list[float] = []
            floors: list[float] = []
            for number in range(1, rounds + 1):
                served.append(measure([*COUNCIL, "serve", str(config)], root, gh, window))
                floors.append(
                    measure(
                        [sys.executable, str(floor_script), issues_url, TOKEN, str(poll)],
                        root,
                        gh,
                        window,
                    )
                )
                print(
                    f"round {number}: council serve {served[-1]:.2f} s of CPU per idle minute, "
                    f"floor {floors[-1]:.3f}",
                    file=sys.stderr if as_json else sys.stdout,
                    flush=True,
                )
    serve, floor = statistics.median(served), statistics.median(floors)
    # The CPU clock counts in ticks: a floor that used none in its window is under one.
    tick = 60.0 / window / os.sysconf("SC_CLK_TCK")
    ratio = f"{serve / floor:.1f}x" if floor > 0 else f"over {serve / tick:.0f}x"
    if as_json:
        figures = {"serve_cpu_s_per_min": serve, "floor_cpu_s_per_min": floor, "tick_s": tick}
        print(json.dumps({"rounds": rounds, "window_s": window, "poll_s": poll, **figures}))
        return
    print(
        f"idle, poll {poll:g}s, window {window:g}s, {rounds} alternating rounds (medians): "
        f"council serve {serve:.2f} s of CPU per minute ({serve / 60 * 100:.2f}% of one core), "
        f"floor {floor:.3f} s; ratio {ratio}"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--window", type=float, default=20.0, help="seconds measured per round")
    parser.add_argument("--poll", type=float, default=2.0, help="sources' and landing's poll")
    parser.add_argument("--quick", action="store_true", help="1 round of 2 s, 0.5 s poll (CI)")
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    args = parser.parse_args()
    if args.quick:
        args.rounds, args.window, args.poll = 1, 2.0, 0.5  # still 4 polls measured a side
    main(args.rounds, args.window, args.poll, args.json)
