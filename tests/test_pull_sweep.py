"""The crash sweep from push to merge: a task landing by pull request (``test_pull_landing``'s
rig: the fake GitHub over a real bare remote) killed with SIGKILL at every git command and
every durable state write from its branch's push to the end, then resumed. Each time: one
pull request, opened once; merged once; the task ``done``; its work on the remote's base.
Swept twice: merged as soon as opened (every step), and through one review round (a reviewer
asks for a change, the fix is pushed to the same pull request, the reviewer approves; every
third step of a run three times as long): the round is neither lost nor taken twice.

The traced run says which steps there are (``crashpoints``: ``COUNCIL_CRASH_TRACE``); the
sweep kills at each step of the two kinds from the first ``push`` on, and counts what it did:
a kill armed for a step the (shorter) schedule never reached is checked whole, unkilled.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
import test_pull_landing as landing
from cli_process_helpers import events
from remote_repo import make_team
from timing import patience

from orchestrator.models import TaskStatus
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import TRACE_ENV
from orchestrator.testing.fake_github import FakeGitHub
from orchestrator.testing.fake_github.demo import DemoIssue, DemoReviewer

FLOWS = {
    "merged": "approvals: 0, checks: ignore, merge: auto",
    "reviewed": "approvals: 1, checks: ignore, merge: auto, max_review_rounds: 2",
}
SLICES = 8
EVERY = {"merged": 1, "reviewed": 3}  # steps apart: each reviewed run makes three times as many
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


def to_the_end(rig: landing.Rig) -> subprocess.CompletedProcess[str]:
    """``resume`` until the run ends done (a pull request waiting for the reviewer ends a
    run with 1), at most a few times."""
    for _ in range(4):
        resumed = council(rig, "resume")
        if resumed.returncode != 1:
            break
    return resumed


def council(rig: landing.Rig, command: str, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*landing.COUNCIL, command, str(rig.config)],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env={**landing.ENV, "GH_TOKEN": landing.TOKEN, **env},
        timeout=patience(60),
    )


def steps_after_push(trace: Path) -> dict[str, list[int]]:
    """For each swept point, the k (1-based, counted from the run's start) of its steps from
    the branch's first push on."""
    lines = [line.split("\t") for line in trace.read_text().splitlines()]
    found: dict[str, list[int]] = {"git.ran": [], "write.replaced": []}
    counts = dict.fromkeys(found, 0)
    pushed = False
    for point, *what in lines:
        if point not in counts:
            continue
        counts[point] += 1
        pushed = pushed or (point == "git.ran" and what[:1] == ["push"])
        if pushed:
            found[point].append(counts[point])
    return found


@pytest.fixture(scope="module", params=sorted(FLOWS))
def sweep(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> tuple[str, list[tuple[str, int]]]:
    """A flow, and every (point, k) to kill it at, from one traced run to the end."""
    flow = str(request.param)
    root = tmp_path_factory.mktemp(f"pull-trace-{flow}")
    with world(root, flow) as (rig, _):
        done = council(rig, "run", **{TRACE_ENV: str(root / "trace.txt")})
        if done.returncode == 1:
            done = to_the_end(rig)
        assert done.returncode == 0, done.stderr
    found = steps_after_push(root / "trace.txt")
    assert found["git.ran"] and found["write.replaced"], found
    return flow, [(point, k) for point, ks in found.items() for k in ks[:: EVERY[flow]]]


def kill_and_resume(root: Path, flow: str, point: str, k: int) -> list[str]:
    """Kill a fresh run of ``flow`` at ``point:k``, resume it, check: the problems found."""
    where = f"{flow} {point}:{k}"
    with world(root, flow) as (rig, gh):
        killed = council(rig, "run", **{CRASH_ENV: f"{point}:{k}"})
        if killed.returncode in (0, 1):
            # Not killed: the schedule ended before its k-th step (or waits for the reviewer).
            resumed = killed if killed.returncode == 0 else to_the_end(rig)
        elif killed.returncode != -9:
            return [f"{where}: the run ended {killed.returncode}: {killed.stderr[-1500:]}"]
        else:
            resumed = to_the_end(rig)
        problems = []
        # Killed after the session was written finished (its last writes): nothing is left
        # to resume, which resume says; the checks below show it whole.
        finished = resumed.returncode == 2 and "no interrupted session" in resumed.stderr
        if resumed.returncode != 0 and not finished:
            problems.append(f"{where}: resume ended {resumed.returncode}: {resumed.stderr[-1500:]}")
        opened = [r for r in gh.requests if r.method == "POST" and r.path.endswith("/pulls")]
        if [r.status for r in opened] != [201]:
            problems.append(f"{where}: pull requests opened: {[r.status for r in opened]}")
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
    sweep: tuple[str, list[tuple[str, int]]], tmp_path: Path, index: int
) -> None:
    flow, steps = sweep
    mine = steps[index::SLICES]
    assert mine, f"the traced {flow} run has too few steps for slice {index}"
    problems: list[str] = []
    for point, k in mine:
        problems += kill_and_resume(tmp_path / f"{point}-{k}", flow, point, k)
    assert not problems, "\n".join(problems)
