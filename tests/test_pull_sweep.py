"""The crash sweep from push to merge: a task landing by pull request (``test_pull_landing``'s
rig: the fake GitHub over a real bare remote) killed with SIGKILL at every git command and
every durable state write from its branch's push to the end, then resumed. Each time: one
pull request, opened once; merged once; the task ``done``; its work on the remote's base.

The traced run says which steps there are (``crashpoints``: ``COUNCIL_CRASH_TRACE``); the
sweep kills at each step of the two kinds from the first ``push`` on, and counts what it did:
a kill armed for a step the (shorter) schedule never reached is checked whole, unkilled.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import test_pull_landing as landing
from remote_repo import make_team
from timing import patience

from orchestrator.models import TaskStatus
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.safety.crashpoints import TRACE_ENV
from orchestrator.testing.fake_github import FakeGitHub

LANDING = "approvals: 0, checks: ignore, merge: auto"
SLICES = 6


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


@pytest.fixture(scope="module")
def sweep(tmp_path_factory: pytest.TempPathFactory) -> list[tuple[str, int]]:
    """Every (point, k) to kill at, from one traced run to the end."""
    root = tmp_path_factory.mktemp("pull-trace")
    team = make_team(root)
    team.clone("repo")
    with FakeGitHub(team.remote, owner=landing.OWNER, repo=landing.NAME, token=landing.TOKEN) as gh:
        rig = landing.Rig(root, gh, team.remote, LANDING)
        done = council(rig, "run", **{TRACE_ENV: str(root / "trace.txt")})
        assert done.returncode == 0, done.stderr
    found = steps_after_push(root / "trace.txt")
    assert found["git.ran"] and found["write.replaced"], found
    return [(point, k) for point, ks in found.items() for k in ks]


def kill_and_resume(root: Path, point: str, k: int) -> list[str]:
    """Kill a fresh run at ``point:k``, resume it, check: the problems found."""
    team = make_team(root)
    team.clone("repo")
    where = f"{point}:{k}"
    with FakeGitHub(team.remote, owner=landing.OWNER, repo=landing.NAME, token=landing.TOKEN) as gh:
        rig = landing.Rig(root, gh, team.remote, LANDING)
        killed = council(rig, "run", **{CRASH_ENV: where})
        if killed.returncode == 0:
            resumed = killed  # the schedule ended before its k-th step: checked whole
        elif killed.returncode != -9:
            return [f"{where}: the run ended {killed.returncode}: {killed.stderr[-1500:]}"]
        else:
            resumed = council(rig, "resume")
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
        return problems


@pytest.mark.parametrize("index", range(SLICES))
def test_a_kill_at_any_step_from_push_to_merge_opens_and_merges_once(
    sweep: list[tuple[str, int]], tmp_path: Path, index: int
) -> None:
    mine = sweep[index::SLICES]
    assert mine, f"the traced run has too few steps for slice {index}"
    problems: list[str] = []
    for point, k in mine:
        problems += kill_and_resume(tmp_path / f"{point}-{k}", point, k)
    assert not problems, "\n".join(problems)
