"""Stacked pull requests (``landing.pulls: stacked``), end to end: ``council`` as a real
process, the offline scripted CLI doing the work, the fake GitHub over a real bare repository
that is the clone's ``origin``. A chain of dependent tasks is reviewed as it is built: each
pull request on the one below it, landing bottom-up."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from orchestrator.models import TaskStatus
from orchestrator.testing.fake_github import FakeGitHub
from tests.forge.test_pull_landing import COUNCIL, NAME, OWNER, PEOPLE, TOKEN, Rig
from tests.support.cli_process_helpers import ENV
from tests.support.cli_process_helpers import events as events_of
from tests.support.merge_repo import git
from tests.support.remote_repo import make_team
from tests.support.timing import patience

ONE = {"id": "one", "prompt": "Start the list.\nWRITE one.txt first"}
TWO = {"id": "two", "prompt": "Go on.\nWRITE two.txt second", "depends_on": ["one"]}
THREE = {"id": "three", "prompt": "End it.\nWRITE three.txt third", "depends_on": ["two"]}
CHAIN = (ONE, TWO, THREE)


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Any]:
    team = make_team(tmp_path)
    team.clone("repo")
    with FakeGitHub(team.remote, owner=OWNER, repo=NAME, token=TOKEN, people=PEOPLE) as gh:

        def make(landing: str, tasks: tuple[dict[str, Any], ...] = CHAIN) -> Rig:
            return Rig(tmp_path, gh, team.remote, f"pulls: stacked, {landing}", tasks)

        yield make


def _by_head(rig: Rig) -> dict[str, int]:
    return {rig.pull(n)["head"]["ref"].removeprefix("council/"): n for n in rig.pulls()}


def _shown(rig: Rig, *args: str) -> subprocess.CompletedProcess[str]:
    """``council status FILE ARGS`` as a process."""
    return subprocess.run(
        [*COUNCIL, "status", str(rig.config), *args],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )


def _status(rig: Rig) -> dict[str, Any]:
    shown = _shown(rig, "--json")
    assert shown.returncode in (0, 1), shown.stderr
    return {t["task_id"]: t for t in json.loads(shown.stdout)["tasks"]}


def test_a_chain_of_three_opens_three_stacked_pull_requests_at_once(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    first = rig.council("run")
    assert first.returncode == 1, first.stderr  # all three wait for a review
    pulls = _by_head(rig)
    assert sorted(pulls) == ["one", "three", "two"]
    one, two, three = (rig.pull(pulls[t]) for t in ("one", "two", "three"))
    assert one["base"]["ref"] == "main"
    assert two["base"]["ref"] == "council/one"
    assert three["base"]["ref"] == "council/two"
    # Each starts from the exact head below it: its own work only, on top of that head.
    assert git(rig.bare, "rev-parse", f"{two['head']['sha']}^") == one["head"]["sha"]
    assert git(rig.bare, "rev-parse", f"{three['head']['sha']}^") == two["head"]["sha"]
    assert git(rig.bare, "show", f"{three['head']['sha']}:one.txt") == "first"
    for state in ("one", "two", "three"):
        assert rig.state(state).status == TaskStatus.IN_REVIEW
    # The bodies name the stack, links down and up.
    body = two["body"]
    assert f"below: #{pulls['one']}" in body and f"above: #{pulls['three']}" in body
    assert f"above: #{pulls['two']}" in one["body"]
    assert f"below: #{pulls['two']}" in three["body"] and "above:" not in three["body"]
    # Nothing landed, nothing merged before a review.
    assert rig.base_has("one.txt") is None
    assert not [r for r in rig.gh.requests if r.path.endswith("/merge")]
    shown = _status(rig)
    assert shown["two"]["pull"]["stack"] == {
        "place": 2,
        "below": [{"task_id": "one", "number": pulls["one"]}],
        "above": [{"task_id": "three", "number": pulls["three"]}],
    }
    assert shown["one"]["pull"]["stack"]["place"] == 1
    assert "approving review" in shown["three"]["pull"]["waiting"]
    wide = _shown(rig, "--wide")
    assert f"stack 2: on #{pulls['one']} one, under #{pulls['three']} three" in wide.stdout
    # Approved above but not below: nothing above lands before what it stands on.
    for task in ("two", "three"):
        rig.gh.add_review(pulls[task], "alice", "APPROVED")
    assert rig.council("resume").returncode == 1
    assert not [r for r in rig.gh.requests if r.path.endswith("/merge")]
    assert rig.state("two").metadata["pull"]["waiting"] == (
        "the pull request(s) below it (one) to land first"
    )
    assert rig.state("two").status == TaskStatus.IN_REVIEW


def test_merging_bottom_up_lands_each_exactly_once(make_rig: Any) -> None:
    rig = make_rig("approvals: 0, checks: ignore, merge: auto")
    done = rig.council("run")
    assert done.returncode == 0, done.stderr
    pulls = _by_head(rig)
    assert len(pulls) == 3
    for task in ("one", "two", "three"):
        assert rig.state(task).status == TaskStatus.DONE, rig.state(task)
        assert rig.pull(pulls[task])["merged"] is True
        assert rig.pull(pulls[task])["base"]["ref"] == "main"  # each landed on the base
    assert rig.base_has("one.txt") == "first\n"
    assert rig.base_has("two.txt") == "second\n"
    assert rig.base_has("three.txt") == "third\n"
    merged = [
        r
        for r in rig.gh.requests
        if r.method == "PUT" and r.path.endswith("/merge") and r.status == 200
    ]
    assert len(merged) == 3
    # Bottom-up: main's merges, oldest first, are one's, then two's, then three's.
    subjects = git(rig.bare, "log", "--first-parent", "--reverse", "--format=%s", "main")
    merges = [line for line in subjects.splitlines() if line.startswith("Merge pull request")]
    assert merges == [
        f"Merge pull request #{pulls[t]} from {OWNER}/council/{t}" for t in ("one", "two", "three")
    ]
    kinds = [e["type"] for e in events_of(rig.repo)]
    assert kinds.count("pull.stack_retargeted") == 2
    assert kinds.count("pull.merged") == 3


def test_a_change_asked_for_on_the_lowest_is_carried_up(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    pulls = _by_head(rig)
    before = {t: rig.gh.site.head_sha(pulls[t]) for t in ("two", "three")}
    rig.gh.add_review(pulls["two"], "alice", "APPROVED")  # two's head, as it is now
    rig.gh.add_review(pulls["one"], "alice", "CHANGES_REQUESTED", "WRITE review.txt answered")
    resumed = rig.council("resume")
    assert resumed.returncode == 1, resumed.stderr  # one waits for alice again
    assert _by_head(rig) == pulls  # the same three pull requests
    one_head = rig.gh.site.head_sha(pulls["one"])
    assert git(rig.bare, "show", f"{one_head}:review.txt") == "answered"
    for task, below in (("two", "one"), ("three", "two")):
        head = rig.gh.site.head_sha(pulls[task])
        assert head != before[task]
        # Carried up, never forced: the old head and the new one below are both in it.
        assert git(rig.bare, "merge-base", "--is-ancestor", before[task], head) == ""
        below_head = rig.gh.site.head_sha(pulls[below])
        assert git(rig.bare, "merge-base", "--is-ancestor", below_head, head) == ""
        assert git(rig.bare, "show", f"{head}:review.txt") == "answered"
        stack = rig.state(task).metadata["stack"]
        assert stack["on"][below] == below_head and stack["rebuilt"] >= 1
        assert rig.state(task).status == TaskStatus.IN_REVIEW
    # alice approved two's old head: she is asked again, and her approval no longer counts.
    requested = [u["login"] for u in rig.pull(pulls["two"])["requested_reviewers"]]
    assert requested == ["alice"]
    assert rig.state("two").metadata["pull"]["approvals"] == 0
    kinds = [e["type"] for e in events_of(rig.repo)]
    assert kinds.count("pull.feedback_round") == 1  # one's; the carries are no review round
    assert kinds.count("pull.stack_carried") >= 2


def test_a_closed_lower_pull_request_stops_the_ones_above(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    pulls = _by_head(rig)
    rig.gh.human_close(pulls["one"])
    resumed = rig.council("resume")
    assert resumed.returncode == 1, resumed.stderr
    assert rig.state("one").status == TaskStatus.FAILED
    for task, below in (("two", "one"), ("three", "two")):
        state = rig.state(task)
        assert state.status == TaskStatus.FAILED
        assert state.metadata["outcome"] == "stack_below"
        assert f"task {below}" in (state.error or "") and "stopped" in (state.error or "")
        # Its work is kept: its branch on the remote, its pull request open.
        assert rig.pull(pulls[task])["state"] == "open"
        assert git(rig.bare, "rev-parse", f"council/{task}") == rig.gh.site.head_sha(pulls[task])
    assert f"#{pulls['one']}, task one) was closed without merging" in (
        rig.state("two").error or ""
    )
    assert "task two) ended (failed)" in (rig.state("three").error or "")
    assert rig.base_has("one.txt") is None and rig.base_has("two.txt") is None
    assert not [r for r in rig.gh.requests if r.path.endswith("/merge")]


def test_a_kill_in_the_middle_of_a_retarget_then_resume_lands_everything_once(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 0, checks: ignore, merge: auto")
    crashed = rig.council("run", crash_at="pull.retarget")
    assert crashed.returncode == -9, crashed.stderr
    assert "crash point pull.retarget reached" in crashed.stderr
    pulls = _by_head(rig)
    # Killed after the forge retargeted two, before the run recorded it.
    assert rig.pull(pulls["one"])["merged"] is True
    assert rig.pull(pulls["two"])["base"]["ref"] == "main"
    assert rig.state("two").metadata["stack"]["base"] == "council/one"
    resumed = rig.council("resume")
    assert resumed.returncode == 0, resumed.stderr
    heads = sorted(rig.pull(n)["head"]["ref"] for n in rig.pulls())
    assert heads == ["council/one", "council/three", "council/two"]  # each opened once
    pulls = _by_head(rig)
    assert rig.pull(pulls["three"])["base"]["ref"] == "main"
    for task in ("one", "two", "three"):
        assert rig.state(task).status == TaskStatus.DONE
        assert rig.pull(pulls[task])["merged"] is True
    assert rig.base_has("three.txt") == "third\n"
    merged = [
        r
        for r in rig.gh.requests
        if r.method == "PUT" and r.path.endswith("/merge") and r.status == 200
    ]
    assert len(merged) == 3
    subjects = git(rig.bare, "log", "--first-parent", "--format=%s", "main")
    assert sum(line.startswith("Merge pull request") for line in subjects.splitlines()) == 3


def test_a_task_on_two_open_pull_requests_starts_from_their_merge_made_and_recorded(
    make_rig: Any,
) -> None:
    other = {"id": "other", "prompt": "Beside it.\nWRITE other.txt beside"}
    top = {"id": "top", "prompt": "On both.\nWRITE top.txt on both", "depends_on": ["one", "other"]}
    rig = make_rig("approvals: 1, checks: ignore, merge: auto", (ONE, other, top))
    assert rig.council("run").returncode == 1
    pulls = _by_head(rig)
    assert sorted(pulls) == ["one", "other", "top"]
    heads = {t: rig.gh.site.head_sha(pulls[t]) for t in pulls}
    stack = rig.state("top").metadata["stack"]
    merge = stack["merge"]
    # The merge council made of the two heads below, recorded, pushed as the base of top's.
    assert stack["below"] == ["one", "other"] and stack["start"] == merge
    assert stack["on"] == {"one": heads["one"], "other": heads["other"]}
    parents = git(rig.bare, "rev-list", "--parents", "-n", "1", merge).split()[1:]
    assert parents == [heads["one"], heads["other"]]
    assert rig.pull(pulls["top"])["base"]["ref"] == "council/top-below"
    assert git(rig.bare, "rev-parse", "council/top-below") == merge
    assert git(rig.bare, "rev-parse", f"{heads['top']}^") == merge
    body = rig.pull(pulls["top"])["body"]
    assert f"below: #{pulls['one']}" in body and f"below: #{pulls['other']}" in body
    for task in ("one", "other", "top"):
        rig.gh.add_review(pulls[task], "alice", "APPROVED")
    resumed = rig.council("resume")
    assert resumed.returncode == 0, resumed.stderr
    assert rig.pull(pulls["top"])["base"]["ref"] == "main"
    for task, path, text in (("one", "one.txt", "first"), ("top", "top.txt", "on both")):
        assert rig.state(task).status == TaskStatus.DONE
        assert rig.base_has(path) == f"{text}\n"
    assert rig.base_has("other.txt") == "beside\n"
    subjects = git(rig.bare, "log", "--first-parent", "--reverse", "--format=%s", "main")
    merges = [line for line in subjects.splitlines() if line.startswith("Merge pull request")]
    assert len(merges) == 3 and merges[-1].endswith("council/top")  # top after both below


def test_a_change_below_that_conflicts_goes_back_to_the_cli_and_no_marker_is_pushed(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    pulls = _by_head(rig)
    two_head = rig.gh.site.head_sha(pulls["two"])
    conversation = rig.state("two").phases["build"].native_session_id
    # One is asked to write the file two wrote: carrying it up into two conflicts.
    rig.gh.add_review(pulls["one"], "alice", "CHANGES_REQUESTED", "WRITE two.txt from one")
    resumed = rig.council("resume")
    assert resumed.returncode == 1, resumed.stderr
    carried = [e["data"] for e in events_of(rig.repo) if e["type"] == "pull.stack_carried"]
    assert [(e["task_id"], e["clean"], e["conflicts"]) for e in carried] == [
        ("two", False, ["two.txt"])
    ]
    rounds = [e["data"] for e in events_of(rig.repo) if e["type"] == "pull.feedback_round"]
    assert [e["task_id"] for e in rounds] == ["one", "two"]
    assert f"#{pulls['one']} below changed" in rounds[1]["reasons"]
    two = rig.state("two")
    # Its CLI's conversation went on with the change named; this scripted CLI resolved
    # nothing, so nothing was pushed: the task ends conflict, its work and pull request kept.
    assert two.phases["build"].native_session_id == conversation
    assert two.status == TaskStatus.CONFLICT
    assert "conflict markers are left in two.txt" in (two.error or "")
    assert rig.gh.site.head_sha(pulls["two"]) == two_head
    assert rig.pull(pulls["two"])["state"] == "open"
    logs = "".join(p.read_text() for p in (rig.repo / ".council" / "logs").glob("two-*"))
    assert f"#{pulls['one']} (task one), changed" in logs and "two.txt" in logs
    three = rig.state("three")
    assert three.status == TaskStatus.FAILED and three.metadata["outcome"] == "stack_below"
    assert "task two) ended (conflict)" in (three.error or "")
