"""The crash sweep from push to merge: a task landing by pull request (``test_pull_landing``'s
rig: the fake GitHub over a real bare remote) killed with SIGKILL at every git command and
every durable state write from its branch's push to the end, then resumed. Each time: one
pull request, opened once; merged once; the task ``done``; its work on the remote's base.
Swept twice: merged as soon as opened (every step), and through one review round (a reviewer
asks for a change, the fix is pushed to the same pull request, the reviewer approves; every
fourth step of the run and its resumes, far more steps): the round is neither lost nor taken
twice.

The traced run says which steps there are (``crashpoints``: ``COUNCIL_CRASH_TRACE``), in the
run and in each resume it took (a pull request waiting for its reviewer ends a run, exit 1,
and ``resume`` follows it again); the sweep kills each of those processes at each step of the
two kinds from the first ``push`` on. A kill armed for a step the (shorter) schedule never
reached is checked whole, unkilled.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

import tests.forge.test_pull_landing as landing
from orchestrator.models import TaskStatus
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import TRACE_ENV
from orchestrator.testing.fake_github import FakeGitHub
from orchestrator.testing.fake_github.demo import DemoIssue, DemoReviewer
from tests.support.cli_process_helpers import ENV, events
from tests.support.remote_repo import make_team
from tests.support.timing import patience

FLOWS = {
    "merged": "approvals: 0, checks: ignore, merge: auto",
    "reviewed": "approvals: 1, checks: ignore, merge: auto, max_review_rounds: 2",
}
SLICES = 8
EVERY = {"merged": 1, "reviewed": 4}  # steps apart: a reviewed run and its resumes make far more
ASK = DemoIssue("one", "", "WRITE review.txt answered", ("one.txt", 1, "Answer the review."))


@contextmanager
def world(root: Path, flow: str) -> Iterator[tuple[landing.Rig, FakeGitHub]]:
    """A rig for ``flow``; in a reviewed one, a reviewer at work on the fake GitHub."""
    team = make_team(root)
    team.clone("repo")
    with FakeGitHub(team.remote, owner=landing.OWNER, repo=landing.NAME, token=landing.TOKEN) as gh:
        rig = landing.Rig(root, gh, team.remote, FLOWS[flow])
        reviewer = DemoReviewer(gh, {"council/one": ASK}) if flow == "reviewed" else None
        if reviewer is not None:
            reviewer.start()
        try:
            yield rig, gh
        finally:
            if reviewer is not None:
                reviewer.stop()


def to_the_end(
    rig: landing.Rig, arm: dict[int, dict[str, str]] | None = None, trace: Path | None = None
) -> list[subprocess.CompletedProcess[str]]:
    """``run``, then ``resume`` until the run ends done (a pull request waiting for the
    reviewer ends a run with 1; a kill with -9), at most a few times: every process's result.
    ``arm``: process number (0: the run) -> the environment that arms its kill; ``trace``: a
    file every process traces its steps to, a line ``process\t<n>`` before each one's."""
    done: list[subprocess.CompletedProcess[str]] = []
    for number in range(6):
        env = dict((arm or {}).get(number, {}))
        if trace is not None:
            with trace.open("a") as file:
                file.write(f"process\t{number}\n")
            env[TRACE_ENV] = str(trace)
        done.append(council(rig, "run" if number == 0 else "resume", **env))
        if done[-1].returncode not in (1, -9):
            break
    return done


def council(rig: landing.Rig, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*landing.COUNCIL, command, str(rig.config)],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env={**ENV, "GH_TOKEN": landing.TOKEN, **env},
        timeout=patience(60),
    )


def steps_after_push(trace: Path) -> list[tuple[int, str, int]]:
    """Each step of a swept point from the branch's first push on, as (process number, point,
    k counted from that process's start)."""
    found: list[tuple[int, str, int]] = []
    process, counts, pushed = 0, {"git.ran": 0, "write.replaced": 0}, False
    for point, _, what in (line.partition("\t") for line in trace.read_text().splitlines()):
        if point == "process":
            process, counts = int(what), dict.fromkeys(counts, 0)
            continue
        if point not in counts:
            continue
        counts[point] += 1
        pushed = pushed or (point == "git.ran" and what.split(" ")[:1] == ["push"])
        if pushed:
            found.append((process, point, counts[point]))
    return found


@pytest.fixture(scope="module", params=sorted(FLOWS))
def sweep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[tuple[int, str, int]]]:
    """A flow, and every (process, point, k) to kill it at, from one traced run to the end
    (the run and the resumes it took)."""
    flow = str(request.param)
    root = tmp_path_factory.mktemp(f"pull-trace-{flow}")
    with world(root, flow) as (rig, _):
        done = to_the_end(rig, trace=root / "trace.txt")
        assert done[-1].returncode == 0, done[-1].stderr
    found = steps_after_push(root / "trace.txt")
    points = {point for _, point, _ in found}
    assert points == {"git.ran", "write.replaced"}, found
    return flow, found[:: EVERY[flow]]


def kill_and_resume(root: Path, flow: str, process: int, point: str, k: int) -> list[str]:
    """A fresh run of ``flow`` with its ``process``-th process (0: the run, then each resume)
    killed at ``point:k``, resumed to the end, checked: the problems found."""
    where = f"{flow} process {process} {point}:{k}"
    with world(root, flow) as (rig, gh):
        done = to_the_end(rig, arm={process: {CRASH_ENV: f"{point}:{k}"}})
        odd = [d for d in done if d.returncode not in (0, 1, 2, -9)]
        if odd:
            return [f"{where}: a process ended {odd[0].returncode}: {odd[0].stderr[-1500:]}"]
        resumed = done[-1]
        problems = []
        # Killed after the session was written finished (its last writes): nothing is left
        # to resume, which resume says; the checks below show it whole.
        finished = resumed.returncode == 2 and "no interrupted session" in resumed.stderr
        if resumed.returncode != 0 and not finished:
            problems.append(f"{where}: resume ended {resumed.returncode}: {resumed.stderr[-1500:]}")
        opened = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/pulls")]
        # Opened once: one 201. A kill between the opening and its record (a heartbeat's or
        # another task's write falls in that window under load) makes the resume ask again,
        # and GitHub answers 422 "already exists", which is how it finds that one
        # (``pull_landing._pull_for``): refused, so no second pull request.
        statuses = [r.status for r in opened]
        if statuses.count(201) != 1 or set(statuses) - {201, 422}:
            asked = [f"{r.method} {r.path.split('?')[0]} {r.status}" for r in gh.requests]
            problems.append(
                f"{where}: pull requests opened: {[r.status for r in opened]}; the requests "
                f"{asked}; the processes said {[d.stderr[-800:] for d in done]}"
            )
        merges = [r for r in gh.requests if r.method == "PUT" and r.path.endswith("/merge")]
        if [r.status for r in merges if r.status == 200] != [200]:
            problems.append(f"{where}: merges answered {[r.status for r in merges]}")
        pulls = rig.pulls()
        if len(pulls) != 1 or not rig.pull(pulls[0])["merged"]:
            problems.append(
                f"{where}: pull requests {pulls}, merged: {[rig.pull(n)['merged'] for n in pulls]}"
            )
        if rig.state().status != TaskStatus.DONE:
            problems.append(f"{where}: the task ended {rig.state().status}")
        if rig.base_has("one.txt") != "hello from one\n":
            problems.append(f"{where}: the base has {rig.base_has('one.txt')!r} for one.txt")
        if flow == "reviewed":
            rounds = rig.state().metadata.get("pull", {}).get("feedback_rounds")
            if rounds != 1 or rig.base_has("review.txt") != "answered\n":
                said = [
                    (e["type"], e.get("data", {}).get("reasons"))
                    for e in events(rig.repo)
                    if e["type"] in ("pull.feedback_round", "pull.opened", "run.resumed")
                ]
                problems.append(
                    f"{where}: {rounds} feedback round(s), review.txt "
                    f"{rig.base_has('review.txt')!r} on the base; {said}; "
                    f"{rig.state().metadata.get('pull')}; reviews "
                    f"{[(r.id, r.state) for r in gh.site.reviews.get(pulls[0], [])]}"
                )
        return problems


@pytest.mark.parametrize("index", range(SLICES))
def test_a_kill_at_any_step_from_push_to_merge_opens_and_merges_once(
    sweep: tuple[str, list[tuple[int, str, int]]], tmp_path: Path, index: int
) -> None:
    flow, steps = sweep
    mine = steps[index::SLICES]
    assert mine, f"the traced {flow} run has too few steps for slice {index}"
    problems: list[str] = []
    for process, point, k in mine:
        root = tmp_path / f"{process}-{point}-{k}"
        problems += kill_and_resume(root, flow, process, point, k)
    assert not problems, "\n".join(problems)
