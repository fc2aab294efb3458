"""Landing by pull request (``landing.via: pull_request``), end to end: ``council`` as a real
process, the offline scripted CLI doing the work, and the fake GitHub over a real bare
repository that is the clone's ``origin`` remote.

Each test checks what a person would: one pull request on the forge for the task, its commits
on the bare repository's base once merged, the task's record, and what ``council`` said.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import pytest

from orchestrator.config.load import load_config
from orchestrator.council import Council
from orchestrator.forge.connect import connect
from orchestrator.models import TaskStatus
from orchestrator.safety.crashpoints import ENV as CRASH_ENV
from orchestrator.scheduler.pulls.cancelled import close_cancelled_pull
from orchestrator.state import FileStateStore
from orchestrator.testing.fake_github import FakeGitHub
from tests.support.cli_process_helpers import ENV, task_states, wait_for
from tests.support.cli_process_helpers import events as events_of
from tests.support.merge_repo import git
from tests.support.remote_repo import make_team
from tests.support.timing import patience

TOKEN = "ghp_fakeTokenForPullTests0123456789"
OWNER, NAME = "octo", "widgets"
PEOPLE = {"alice": "COLLABORATOR", "owner": "MEMBER"}  # people with write access
COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]


ONE = {"id": "one", "prompt": "Add the greeting.\nWRITE one.txt hello from one"}


def _config(api_url: str, landing: str, tasks: tuple[dict[str, Any], ...] = (ONE,)) -> str:
    entries = "".join(f"  - {json.dumps(entry)}\n" for entry in tasks)
    return f"""\
repo: repo
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 1, backoff_initial: 0.02, backoff_max: 0.1}}
scheduler: {{tick: 0.05, heartbeat_interval: 0.5, stale_threshold: 10m}}
landing: {{via: pull_request, poll: 0.2, {landing}}}
forge: {{repo: {OWNER}/{NAME}, api_url: "{api_url}", token: "${{GH_TOKEN}}"}}
tasks:
{entries}"""


class Rig:
    def __init__(
        self,
        tmp_path: Path,
        gh: FakeGitHub,
        bare: Path,
        landing: str,
        tasks: tuple[dict[str, Any], ...] = (ONE,),
    ) -> None:
        self.tmp_path, self.gh, self.bare = tmp_path, gh, bare
        self.repo = tmp_path / "repo"
        self.config = tmp_path / "run.yaml"
        self.config.write_text(_config(gh.api_url, landing, tasks))

    def council(
        self, command: str, crash_at: str | None = None
    ) -> subprocess.CompletedProcess[str]:
        env = {**ENV, "GH_TOKEN": TOKEN}
        env.pop(CRASH_ENV, None)
        if crash_at is not None:
            env[CRASH_ENV] = crash_at
        return subprocess.run(
            [*COUNCIL, command, str(self.config)],
            cwd=self.tmp_path,
            capture_output=True,
            text=True,
            env=env,
            timeout=patience(60),
        )

    def pulls(self) -> list[int]:
        return [n for n, issue in self.gh.site.issues.items() if issue.pull is not None]

    def only_pull(self) -> int:
        found = self.pulls()
        assert len(found) == 1, found
        return found[0]

    def pull(self, number: int) -> dict[str, Any]:
        return self.gh.site.pull_json(number)

    def state(self, task_id: str = "one") -> Any:
        return task_states(self.repo)[task_id]

    def base_has(self, path: str) -> str | None:
        result = subprocess.run(
            ["git", "-C", str(self.bare), "show", f"refs/heads/main:{path}"],
            capture_output=True,
            text=True,
        )
        return result.stdout if result.returncode == 0 else None


@pytest.fixture
def make_rig(tmp_path: Path) -> Iterator[Any]:
    team = make_team(tmp_path)
    team.clone("repo")
    with FakeGitHub(team.remote, owner=OWNER, repo=NAME, token=TOKEN, people=PEOPLE) as gh:

        def make(landing: str, tasks: tuple[dict[str, Any], ...] = (ONE,)) -> Rig:
            return Rig(tmp_path, gh, team.remote, landing, tasks)

        yield make


def _approve_and_pass(rig: Rig, number: int) -> None:
    rig.gh.add_review(number, "alice", "APPROVED")
    rig.gh.set_check_run(rig.gh.site.head_sha(number), "ci", conclusion="success")


def test_a_task_lands_through_one_pull_request_council_merges(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: required, merge: auto")
    first = rig.council("run")
    # Waiting for a review: the run ends by itself, naming the pull request.
    assert first.returncode == 1, first.stderr
    number = rig.only_pull()
    pull = rig.pull(number)
    assert pull["head"]["ref"] == "council/one" and pull["state"] == "open"
    assert f"#{number}" in first.stderr and pull["html_url"] in first.stderr
    assert "Add the greeting." in pull["body"]
    state = rig.state()
    assert state.status == TaskStatus.IN_REVIEW
    assert state.claim is not None and state.claim.status != "active"
    assert state.metadata["pull"]["number"] == number and state.metadata["pull"]["human"]
    assert "worktree" not in state.metadata
    assert rig.base_has("one.txt") is None
    status = subprocess.run(
        [*COUNCIL, "status", str(rig.config), "--json"],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )
    shown = json.loads(status.stdout)["tasks"][0]
    assert shown["status"] == "in_review"
    assert shown["pull"]["number"] == number and shown["pull"]["approvals"] == 0
    assert shown["pull"]["url"] == pull["html_url"]

    _approve_and_pass(rig, number)
    second = rig.council("resume")
    assert second.returncode == 0, second.stderr
    assert rig.only_pull() == number  # never opened twice
    assert rig.pull(number)["merged"] is True
    assert rig.base_has("one.txt") == "hello from one\n"
    state = rig.state()
    assert state.status == TaskStatus.DONE and state.merged_commit
    assert git(rig.bare, "merge-base", "--is-ancestor", state.merged_commit, "main") == ""
    assert state.metadata["pull"]["state"] == "merged"
    # The clone's own base followed the landing.
    assert git(rig.repo, "rev-parse", "refs/heads/main") == git(rig.bare, "rev-parse", "main")
    merges = [r for r in rig.gh.requests if r.method == "PUT" and r.path.endswith("/merge")]
    assert len(merges) == 1
    shown_text = subprocess.run(
        [*COUNCIL, "status", str(rig.config), "--wide"],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )
    assert f"PR #{number} merged, 1 approval(s), checks success" in shown_text.stdout
    # The token is in no record, log or event of the run, nor in git.
    for path in (rig.repo / ".council").rglob("*"):
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path
    assert TOKEN not in git(rig.bare, "log", "--all", "-p")


def test_manual_merge_waits_for_a_person_then_resume_ends_done(make_rig: Any) -> None:
    rig = make_rig("approvals: 0, checks: ignore, merge: manual")
    first = rig.council("run")
    assert first.returncode == 1, first.stderr
    number = rig.only_pull()
    assert f"#{number}" in first.stderr and "a person to merge" in first.stderr
    assert rig.state().status == TaskStatus.IN_REVIEW
    assert not [r for r in rig.gh.requests if r.path.endswith("/merge")]  # council never merged

    rig.gh.human_merge(number)
    second = rig.council("resume")
    assert second.returncode == 0, second.stderr
    state = rig.state()
    assert state.status == TaskStatus.DONE
    assert rig.base_has("one.txt") == "hello from one\n"
    assert rig.only_pull() == number


def test_a_pull_request_closed_by_a_person_fails_the_task(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.human_close(number)
    second = rig.council("resume")
    assert second.returncode == 1
    state = rig.state()
    assert state.status == TaskStatus.FAILED
    assert f"#{number}" in (state.error or "") and "closed by a human" in (state.error or "")
    assert rig.base_has("one.txt") is None


@pytest.mark.parametrize("point", ["pull.intent", "pull.opened", "pull.merged"])
def test_a_crash_around_the_pull_request_opens_and_merges_it_once(
    make_rig: Any, point: str
) -> None:
    rig = make_rig("approvals: 0, checks: ignore, merge: auto")
    crashed = rig.council("run", crash_at=point)
    assert crashed.returncode == -9, crashed.stderr
    assert f"crash point {point} reached" in crashed.stderr
    resumed = rig.council("resume")
    assert resumed.returncode == 0, resumed.stderr
    number = rig.only_pull()  # exactly one, whatever the crash cut short
    assert rig.pull(number)["merged"] is True
    assert rig.state().status == TaskStatus.DONE
    assert rig.base_has("one.txt") == "hello from one\n"
    merged = [
        r
        for r in rig.gh.requests
        if r.method == "PUT" and r.path.endswith("/merge") and r.status == 200
    ]
    assert len(merged) == 1


def test_forge_faults_while_following_do_not_fail_the_task(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: required, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    _approve_and_pass(rig, number)
    # More server errors than the client retries, then a secondary rate limit: the follower
    # says the forge did not answer and looks again.
    rig.gh.fail_next(4, 502)
    rig.gh.rate_limit_next(1, status=403, retry_after=1)
    resumed = rig.council("resume")
    assert resumed.returncode == 0, resumed.stderr
    assert rig.state().status == TaskStatus.DONE
    assert rig.only_pull() == number
    assert rig.base_has("one.txt") == "hello from one\n"
    statuses = [r.status for r in rig.gh.requests]
    assert 502 in statuses and 403 in statuses


def test_config_validate_names_the_missing_remote(tmp_path: Path) -> None:
    from tests.support.scheduler_helpers import new_repo

    new_repo(tmp_path)  # no origin remote
    config = tmp_path / "run.yaml"
    config.write_text(_config("https://api.github.com", "merge: auto"))
    found = subprocess.run(
        [*COUNCIL, "config", "validate", str(config)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )
    said = found.stdout + found.stderr
    assert "landing.via: pull_request needs a git remote 'origin'" in said
    line = next(n for n, text in enumerate(config.read_text().splitlines(), 1) if "landing" in text)
    assert f":{line}" in said


def test_a_conflict_with_the_moved_base_is_built_again_into_the_same_pull_request(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: required, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    first_head = rig.gh.site.head_sha(number)
    # Someone lands a clashing one.txt on the base meanwhile: the pull request conflicts.
    rig.gh.git.commit_files("main", {"one.txt": "someone else's\n"}, "clash")
    _approve_and_pass(rig, number)
    resumed = rig.council("resume")
    # Refused, built again on the moved base and pushed to the same pull request, whose new
    # head has no checks yet: it waits for them.
    assert resumed.returncode == 1, resumed.stderr
    assert rig.only_pull() == number
    new_head = rig.gh.site.head_sha(number)
    assert new_head != first_head
    pull = rig.pull(number)
    assert pull["state"] == "open" and pull["mergeable"] is True
    state = rig.state()
    assert state.status == TaskStatus.IN_REVIEW and state.metadata["pull"]["round"] == 1
    assert state.metadata["resolve_rounds"] == 1

    rig.gh.set_check_run(new_head, "ci", conclusion="success")
    # alice approved the head before the resolve round: the new one needs her approval.
    assert rig.council("resume").returncode == 1
    assert "1 more approving review(s)" in rig.state().metadata["pull"]["waiting"]
    rig.gh.add_review(number, "alice", "APPROVED")
    assert rig.council("resume").returncode == 0
    assert rig.state().status == TaskStatus.DONE
    assert rig.base_has("one.txt") == "hello from one\n"
    assert rig.only_pull() == number


def test_a_task_after_one_in_review_waits_with_it_then_forks_from_its_landing(
    make_rig: Any,
) -> None:
    two = {"id": "two", "prompt": "WRITE two.txt after one", "depends_on": ["one"]}
    rig = make_rig("approvals: 0, checks: ignore, merge: manual", (ONE, two))
    assert rig.council("run").returncode == 1  # one waits on a person, two waits on one
    assert rig.state("two").status == TaskStatus.QUEUED
    rig.gh.human_merge(rig.only_pull())
    assert rig.council("resume").returncode == 1  # one done; two's own pull request waits
    assert rig.state("one").status == TaskStatus.DONE
    assert rig.state("two").status == TaskStatus.IN_REVIEW
    second = max(rig.pulls())
    assert len(rig.pulls()) == 2 and rig.pull(second)["head"]["ref"] == "council/two"
    rig.gh.human_merge(second)
    assert rig.council("resume").returncode == 0
    assert rig.base_has("one.txt") == "hello from one\n"
    assert rig.base_has("two.txt") == "after one\n"


def test_review_feedback_is_built_into_the_same_pull_request_in_the_same_conversation(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    first_head = rig.gh.site.head_sha(number)
    conversation = rig.state().phases["build"].native_session_id
    assert conversation
    # The scripted CLI follows the instruction lines of its prompt: the review's body is one.
    rig.gh.add_review(
        number,
        "alice",
        "CHANGES_REQUESTED",
        "WRITE review.txt answered",
        comments=[("one.txt", 1, "Say who it is from.")],
    )
    resumed = rig.council("resume")
    # Built again on its branch, pushed to the same pull request; alice's latest review
    # still asks for changes, so it waits for her.
    assert resumed.returncode == 1, resumed.stderr
    assert rig.only_pull() == number
    new_head = rig.gh.site.head_sha(number)
    assert new_head != first_head
    assert git(rig.bare, "merge-base", "--is-ancestor", first_head, new_head) == ""
    assert git(rig.bare, "show", f"{new_head}:review.txt") == "answered"
    state = rig.state()
    assert state.status == TaskStatus.IN_REVIEW
    assert state.metadata["pull"]["feedback_rounds"] == 1 and state.metadata["pull"]["round"] == 1
    assert "pull_feedback" not in state.metadata
    assert state.phases["build"].native_session_id == conversation  # the conversation went on
    kinds = [e["type"] for e in events_of(rig.repo)]
    assert kinds.count("pull.feedback_round") == 1 and kinds.count("pull.opened") == 2

    rig.gh.add_review(number, "alice", "APPROVED")
    assert rig.council("resume").returncode == 0
    assert rig.state().status == TaskStatus.DONE
    assert rig.base_has("review.txt") == "answered\n"
    assert rig.only_pull() == number


def test_the_reviewers_request_is_the_last_word_of_the_round(make_rig: Any) -> None:
    """A CLI follows the latest instruction it reads: the round asks only what the review
    asked (the conversation knows the task), so the task's own text cannot undo the answer
    (it did, with the review put first: the file written back, nothing pushed)."""
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.add_review(number, "alice", "CHANGES_REQUESTED", "WRITE one.txt hello from alice")
    resumed = rig.council("resume")
    assert resumed.returncode == 1, resumed.stderr
    head = rig.gh.site.head_sha(number)
    assert git(rig.bare, "show", f"{head}:one.txt") == "hello from alice"
    assert rig.state().metadata["pull"]["feedback_rounds"] == 1


def test_a_round_that_changes_nothing_says_so_and_does_not_announce_the_pull_again(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    head = rig.gh.site.head_sha(number)
    rig.gh.add_review(number, "alice", "CHANGES_REQUESTED", "SAY it is so already")
    resumed = rig.council("resume")
    assert resumed.returncode == 1, resumed.stderr
    assert rig.gh.site.head_sha(number) == head  # nothing pushed
    kinds = [e["type"] for e in events_of(rig.repo)]
    assert kinds.count("pull.opened") == 1 and kinds.count("pull.round_unchanged") == 1
    said = resumed.stdout + resumed.stderr
    assert f"feedback round 1 changed nothing: pull request #{number} stays" in said
    assert "open for review" not in said
    rig.gh.add_review(number, "alice", "APPROVED")
    assert rig.council("resume").returncode == 0
    assert rig.state().status == TaskStatus.DONE


def test_a_review_submitted_while_it_is_read_is_answered_whole_in_one_round(
    make_rig: Any,
) -> None:
    """The reviews list is read, then the review comments: a review submitted in between
    shows its comments without itself. Answered then, the comments took one round and the
    review a second (found by the crash sweep under load). The follower reads the comments
    only once a review it has not seen is listed: the look that raced the review saw nothing
    new (as if it came just after), the next one answers the whole review in one round. That
    next look is the same run's when it comes before the run decides to end (a run no longer
    ends while a look is under way: ``PullFollower.end_when``)."""
    rig = make_rig("approvals: 1, checks: ignore, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.review_while_read(
        number,
        "alice",
        "CHANGES_REQUESTED",
        "WRITE review.txt answered",
        comments=[("one.txt", 1, "Say who it is from.")],
    )
    # The look that raced the review saw nothing new, as if it came just after; the run's
    # next look (or, should the run end first, the next resume's) answers it whole.
    assert rig.council("resume").returncode == 1  # answered, or waiting for the review
    if rig.state().metadata["pull"].get("feedback_rounds", 0) == 0:
        assert rig.council("resume").returncode == 1  # answered, now waiting for alice again
    state = rig.state()
    review = rig.gh.site.reviews[number][0]
    (comment,) = rig.gh.site.review_comments[number]
    assert state.metadata["pull"]["feedback_rounds"] == 1
    assert {review.id, comment.id} <= set(state.metadata["pull"]["answered"])
    assert [e["type"] for e in events_of(rig.repo)].count("pull.feedback_round") == 1
    rig.gh.add_review(number, "alice", "APPROVED")
    assert rig.council("resume").returncode == 0
    assert rig.base_has("review.txt") == "answered\n"


def _cancel(rig: Rig) -> subprocess.CompletedProcess[str]:
    """``council cancel`` of task ``one`` of the rig's run, ``--json``."""
    return subprocess.run(
        [*COUNCIL, "cancel", str(rig.config), "one", "--json"],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env={**ENV, "GH_TOKEN": TOKEN},
        timeout=patience(120),  # the forge's retries of a failing request included
    )


def test_cancelling_a_task_in_review_closes_its_pull_request(make_rig: Any) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    cancelled = _cancel(rig)
    assert cancelled.returncode == 0, cancelled.stderr
    outcome = json.loads(cancelled.stdout)
    assert outcome["action"] == "cancelled" and outcome["pull_closed"] == number
    pull = rig.pull(number)
    assert pull["state"] == "closed" and pull["merged"] is False
    said = rig.gh.site.issues[number].comments[-1].body
    assert said.startswith("Task `one` was cancelled in CLI Council") and "council/one" in said
    state = rig.state()
    assert state.status == TaskStatus.CANCELLED and state.metadata["pull"]["state"] == "closed"
    assert rig.base_has("one.txt") is None
    # The branch stays on the remote, with the work.
    assert git(rig.bare, "show", "council/one:one.txt") == "hello from one"


def test_failing_checks_get_a_round_within_max_review_rounds_then_wait_on_a_person(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 0, checks: required, merge: auto, max_review_rounds: 1")
    assert rig.council("run").returncode == 1  # no checks reported yet
    number = rig.only_pull()
    first_head = rig.gh.site.head_sha(number)
    rig.gh.set_check_run(first_head, "ci", conclusion="failure", summary="WRITE ci.txt fixed")
    assert rig.council("resume").returncode == 1  # answered; the new head has no checks yet
    second_head = rig.gh.site.head_sha(number)
    assert second_head != first_head
    assert git(rig.bare, "show", f"{second_head}:ci.txt") == "fixed"
    rig.gh.set_check_run(second_head, "ci", conclusion="failure", summary="still red")
    last = rig.council("resume")
    # Its one round is spent: it waits on a person, nothing pushed again.
    assert last.returncode == 1, last.stderr
    assert "failing checks" in last.stderr
    assert rig.gh.site.head_sha(number) == second_head
    state = rig.state()
    assert state.status == TaskStatus.IN_REVIEW
    assert state.metadata["pull"]["feedback_rounds"] == 1
    assert rig.only_pull() == number


def test_config_validate_refuses_council_tasks_landing_by_pull_request(make_rig: Any) -> None:
    best_of = {**ONE, "council": True, "adapters": ["cli", "cli2"]}
    rig = make_rig("merge: auto", (best_of,))
    text = rig.config.read_text().replace(
        "default_adapter: cli", "  cli2: {type: scripted}\ndefault_adapter: cli"
    )
    rig.config.write_text(text)
    checked = subprocess.run(
        [*COUNCIL, "config", "validate", str(rig.config)],
        cwd=rig.tmp_path,
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
    )
    assert checked.returncode != 0
    assert "does not land council tasks" in checked.stdout + checked.stderr


def test_the_pull_request_says_what_was_done_and_closes_the_tasks_issue(make_rig: Any) -> None:
    from_issue = {**ONE, "metadata": {"issue": 7}}
    rig = make_rig("approvals: 1, checks: ignore, merge: auto", (from_issue,))
    with rig.config.open("a") as config:
        config.write(f"verify:\n  - {sys.executable} -c pass\n")
    assert rig.council("run").returncode == 1
    body = rig.pull(rig.only_pull())["body"]
    assert body.startswith("Task `one`, done by CLI Council.")
    assert "> Add the greeting." in body
    assert "### build (cli)" in body  # the build's own summary follows
    assert f"- `{sys.executable} -c pass`: passed" in body
    assert body.rstrip().endswith("Closes #7")
    assert TOKEN not in body


def test_running_checks_keep_the_run_following_with_conditional_requests(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: required, merge: auto")
    assert rig.council("run").returncode == 1  # waiting for a review
    number = rig.only_pull()
    head = rig.gh.site.head_sha(number)
    rig.gh.add_review(number, "alice", "APPROVED")
    rig.gh.set_check_run(head, "ci", status="in_progress", conclusion=None)
    before = len(rig.gh.requests)
    env = {**ENV, "GH_TOKEN": TOKEN}
    env.pop(CRASH_ENV, None)
    follower = subprocess.Popen(
        [*COUNCIL, "resume", str(rig.config)],
        cwd=rig.tmp_path,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    try:
        # CI is still running: nobody's to act, so the run keeps polling, and its repeated
        # looks are answered 304 from the ETags.
        wait_for(
            lambda: sum(r.status == 304 for r in rig.gh.requests[before:]) >= 3,
            "the follower's conditional polls",
        )
        assert follower.poll() is None
        rig.gh.set_check_run(head, "ci", conclusion="success")
        _out, err = follower.communicate(timeout=patience(60))
    finally:
        if follower.poll() is None:
            follower.kill()
            follower.communicate()
    assert follower.returncode == 0, err
    assert rig.state().status == TaskStatus.DONE
    assert rig.base_has("one.txt") == "hello from one\n"


def test_branch_protection_refusing_the_merge_leaves_it_to_a_person(make_rig: Any) -> None:
    rig = make_rig("approvals: 0, checks: ignore, merge: auto")
    rig.gh.protect("main", refuse="Merging is blocked: a code owner must approve.")
    refused = rig.council("run")
    assert refused.returncode == 1, refused.stderr
    number = rig.only_pull()
    assert "a code owner must approve" in refused.stderr
    state = rig.state()
    assert state.status == TaskStatus.IN_REVIEW and state.metadata["pull"]["human"] is True
    assert "resolve_rounds" not in state.metadata  # no conflict: nothing built again
    assert rig.pull(number)["state"] == "open" and rig.base_has("one.txt") is None
    kinds = [e["type"] for e in events_of(rig.repo)]
    assert "pull.not_merged" in kinds

    def merges() -> int:
        return sum(r.method == "PUT" and r.path.endswith("/merge") for r in rig.gh.requests)

    asked = merges()
    # Nothing council sees changed: the refused merge is not asked again.
    assert rig.council("resume").returncode == 1
    assert merges() == asked
    # A code owner approves and the rule is lifted: the merge is asked again, and lands.
    rig.gh.site.protection.pop("main")
    rig.gh.add_review(number, "owner", "APPROVED")
    assert rig.council("resume").returncode == 0
    assert merges() == asked + 1
    assert rig.state().status == TaskStatus.DONE


@pytest.mark.parametrize("person", ["merged", "closed", "pushed"])
def test_an_approved_pull_request_a_person_changed_is_followed_as_it_now_is(
    make_rig: Any, person: str
) -> None:
    """Approved and green, a pull request is merged without being read first (the merge
    expects the head recorded). One a person merged, closed or pushed to meanwhile: the
    forge refuses that merge, and council reads it then and follows it as it now is."""
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.add_review(number, "alice", "APPROVED")
    head = rig.pull(number)["head"]["ref"]
    if person == "merged":
        rig.gh.human_merge(number)
    elif person == "closed":
        rig.gh.human_close(number)
    else:
        rig.gh.force_push(head, {"one.txt": "hello from a person\n"})
    resumed = rig.council("resume")
    state = rig.state()
    refused = [r.status for r in rig.gh.requests if r.path.endswith("/merge")]
    kinds = [e["type"] for e in events_of(rig.repo)]
    if person == "closed":
        assert resumed.returncode == 1, resumed.stderr
        assert state.status == TaskStatus.FAILED and "closed by a human" in (state.error or "")
        assert refused == [405] and "pull.not_merged" not in kinds
        assert rig.base_has("one.txt") is None
        return
    if person == "pushed":
        # alice approved the head before the push: the new head waits for an approval of
        # its own, never merged on hers (tests/forge/test_pull_trust.py has the rest).
        assert resumed.returncode == 1, resumed.stderr
        assert refused == [409] and kinds.count("pull.not_merged") == 1
        assert state.status == TaskStatus.IN_REVIEW and rig.base_has("one.txt") is None
        rig.gh.add_review(number, "alice", "APPROVED")
        resumed = rig.council("resume")
        state = rig.state()
        refused = [r.status for r in rig.gh.requests if r.path.endswith("/merge")]
    assert resumed.returncode == 0, resumed.stderr
    assert state.status == TaskStatus.DONE
    if person == "merged":
        assert refused == [405] and "pull.not_merged" not in kinds
        assert rig.base_has("one.txt") == "hello from one\n"
    else:  # the person's head is what lands, merged by council once approved again
        assert refused == [409, 200]
        assert rig.base_has("one.txt") == "hello from a person\n"
    assert rig.only_pull() == number


def test_a_task_cancelled_from_python_mid_run_has_its_pull_request_closed(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``Council.cancel`` of a task in review while the run goes on: the run's own follower
    closes its pull request (as ``council cancel`` does), before the run ends."""
    slow = {"id": "slow", "prompt": "WRITE slow.txt slow\nSLEEP 60\nWRITE slow.txt done"}
    rig = make_rig("approvals: 1, checks: ignore, merge: auto", (ONE, slow))
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    monkeypatch.chdir(rig.tmp_path)

    async def scenario() -> Any:
        async with Council.from_config(rig.config) as council:
            async with anyio.create_task_group() as group:
                reports: list[Any] = []

                async def run() -> None:
                    reports.append(await council.run())

                group.start_soon(run)
                with anyio.fail_after(patience(60)):
                    while not rig.pulls() or (await council.status()).task("one").status != (
                        TaskStatus.IN_REVIEW
                    ):
                        await anyio.sleep(0.05)
                await council.cancel("one")
                with anyio.fail_after(patience(60)):
                    while rig.pull(rig.only_pull())["state"] != "closed":
                        await anyio.sleep(0.05)
                await council.cancel("slow")
            return reports[0]

    report = anyio.run(scenario)
    number = rig.only_pull()
    assert {t.task_id: t.status for t in report.tasks} == {"one": "cancelled", "slow": "cancelled"}
    said = rig.gh.site.issues[number].comments[-1].body
    assert said.startswith("Task `one` was cancelled in CLI Council") and "council/one" in said
    assert rig.state().metadata["pull"]["state"] == "closed"
    assert git(rig.bare, "show", "council/one:one.txt") == "hello from one"


def test_a_pull_request_a_cancel_could_not_close_is_closed_by_the_next_resume(
    make_rig: Any,
) -> None:
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.fail_next(4, status=502)  # the cancel's comment, tried 4 times: GitHub is away
    cancelled = _cancel(rig)
    assert cancelled.returncode == 0, cancelled.stderr
    assert json.loads(cancelled.stdout)["pull_left_open"]
    assert rig.pull(number)["state"] == "open", rig.state().metadata
    resumed = rig.council("resume")
    assert rig.pull(number)["state"] == "closed", (
        resumed.returncode,
        resumed.stdout,
        resumed.stderr,
    )
    assert rig.state().metadata["pull"]["state"] == "closed"
    assert rig.state().status == TaskStatus.CANCELLED


def test_two_closers_of_a_cancelled_tasks_pull_request_comment_once(
    make_rig: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``council cancel`` and a running follower (or two workstations) closing the same pull
    request at once: the compare-and-set of ``closing`` lets one of them comment and close."""
    rig = make_rig("approvals: 1, checks: ignore, merge: auto")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.fail_next(4, status=502)  # the cancel leaves it open: recorded cancelled, PR open
    cancelled = _cancel(rig)
    assert json.loads(cancelled.stdout)["pull_left_open"]
    comments_before = len(rig.gh.site.issues[number].comments)
    monkeypatch.setenv("GH_TOKEN", TOKEN)
    config = load_config(rig.config)

    async def both() -> list[int | None]:
        closed: list[int | None] = []
        forge = await connect(config.forge, rig.repo)
        async with FileStateStore(rig.repo / ".council" / "state") as store:
            state = await store.get_task_state("one")
            assert state is not None

            async def close() -> None:
                closed.append(await close_cancelled_pull(forge, store, state))

            async with anyio.create_task_group() as group:
                group.start_soon(close)
                group.start_soon(close)
        return closed

    assert sorted(both_closed := anyio.run(both), key=str) == [number, None], both_closed
    assert rig.pull(number)["state"] == "closed"
    assert len(rig.gh.site.issues[number].comments) == comments_before + 1
    assert rig.state().metadata["pull"]["state"] == "closed"


def test_a_refused_merge_a_person_then_does_by_hand_ends_done(make_rig: Any) -> None:
    """Protection refused council's merge; nothing council gates on changes, so it does not
    ask again, but it still reads the pull request: a person's merge by hand is seen."""
    rig = make_rig("approvals: 0, checks: ignore, merge: auto")
    rig.gh.protect("main", refuse="Merging is blocked: a code owner must approve.")
    assert rig.council("run").returncode == 1
    number = rig.only_pull()
    rig.gh.human_merge(number)  # an administrator, past the rule
    resumed = rig.council("resume")
    assert resumed.returncode == 0, resumed.stderr
    assert rig.state().status == TaskStatus.DONE
    assert rig.base_has("one.txt") == "hello from one\n"
