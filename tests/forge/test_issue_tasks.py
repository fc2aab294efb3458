"""Issues as tasks, in process: an issue as a task (title, body, its ``council`` block), the
source read against the fake GitHub over a real bare repository (pull requests and unlabelled
issues left out, a bad block told once, nothing added twice, a withdrawn issue's queued task
cancelled), the issue told what happens to its task, and a forge type from a plugin."""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import pytest

from orchestrator.config.forge import ForgeConfig
from orchestrator.config.sources import IssuesSource
from orchestrator.config.task import TaskConfig
from orchestrator.errors import CancelError, PluginError, UsageError
from orchestrator.events.base import Event
from orchestrator.events.issues import ForgeCallFailed, IssueSkipped, IssuesRead, IssueWithdrawn
from orchestrator.events.merge import MergeCompleted
from orchestrator.events.pulls import PullMerged, PullOpened
from orchestrator.events.tasks import TaskDispatched, TaskFailed
from orchestrator.forge.base import FAILED, IN_REVIEW, WORKING, Issue
from orchestrator.forge.connect import connect
from orchestrator.forge.issue_source import IssueSource
from orchestrator.forge.issue_tasks import IssueProblem, issue_task
from orchestrator.forge.issue_voice import IssueVoice
from orchestrator.plugins.hookspecs import hookimpl
from orchestrator.plugins.host import load_plugins
from tests.support.forge_helpers import OWNER, REPO, TOKEN, Rig, rig, said


def _issue(body: str, title: str = "Fix the parser", number: int = 7) -> Issue:
    return Issue(number, title, body, "open", ("council",), "octocat", f"https://x/i/{number}")


# -- an issue as a task ---------------------------------------------------------------------


def test_the_prompt_is_the_title_and_the_body_without_the_council_block() -> None:
    body = (
        "It breaks on tabs.\n\n```council\nfiles: [src/parse.py]\ndepends_on: [issue-3, setup]\n"
        "priority: 5\n```\n\n```python\nprint('kept')\n```\n"
    )
    task = issue_task(_issue(body))
    assert task.id == "issue-7"
    assert task.prompt == "Fix the parser\n\nIt breaks on tabs.\n\n```python\nprint('kept')\n```"
    assert (task.files, task.depends_on, task.priority) == (
        ["src/parse.py"],
        ["issue-3", "setup"],
        5,
    )
    assert task.metadata == {"issue": 7, "issue_url": "https://x/i/7"}


def test_a_yaml_block_with_a_council_key_gives_the_settings() -> None:
    body = "Do it.\n```yaml\ncouncil:\n  files: [a.txt]\n```\n```yaml\nother: 1\n```"
    task = issue_task(_issue(body))
    assert task.files == ["a.txt"]
    assert task.prompt == "Fix the parser\n\nDo it.\n```yaml\nother: 1\n```"
    assert issue_task(_issue("", title="Only a title")).prompt == "Only a title"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            "x\n```council\nverify: [rm -rf /]\n```",
            "the `council` block (line 3 of the body): unknown setting 'verify' (an issue may "
            "set files, depends_on, priority, adapters, phases, timeout)",
        ),
        ("```council\nfiles: [a\n```", "the `council` block (line 2 of the body): line 2:"),
        ("```council\nfiles: [../out]\n```", "`council` block: files[0]:"),
        ("```council\npriority: high\n```", "`council` block: priority:"),
        ("```council\n- a\n```", "the top level must be a mapping"),
        ("```council\n{}\n```\n```council\n{}\n```", "2 `council` blocks (lines 2, 5 of the body)"),
        ("```yaml\ncouncil: {}\nmore: 1\n```", "only `council:` may be at its top level"),
    ],
)
def test_a_bad_block_is_a_problem_naming_where(body: str, reason: str) -> None:
    with pytest.raises(IssueProblem) as caught:
        issue_task(_issue(body))
    assert caught.value.number == 7
    assert reason in caught.value.reason


# -- the source, read against the fake GitHub ------------------------------------------------


class Hooks:
    """The run a source feeds, as a test holds it."""

    def __init__(
        self, tasks: Mapping[str, str], defined: Mapping[str, TaskConfig] | None = None
    ) -> None:
        self.status = dict(tasks)
        self.defined = dict(defined or {})
        self.submitted: list[str] = []
        self.cancelled: list[str] = []

    def statuses(self) -> Mapping[str, str]:
        return dict(self.status)

    def task(self, task_id: str) -> TaskConfig | None:
        return self.defined.get(task_id)

    def submit(self, task: TaskConfig) -> None:
        self.submitted.append(task.id)
        self.status[task.id] = "queued"

    async def cancel(self, task_id: str) -> None:
        self.cancelled.append(task_id)
        self.status[task_id] = "cancelled"


@pytest.fixture
def r(tmp_path: Path) -> Iterator[Rig]:
    with rig(tmp_path) as made:
        yield made


def _comments(r: Rig, number: int) -> list[str]:
    return [said(comment.body) for comment in r.gh.site.issues[number].comments]


async def test_labelled_issues_become_tasks_once_and_a_bad_one_is_told_once(r: Rig) -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    one = r.gh.create_issue("First", "WRITE a.txt one", labels=["council"])
    two = r.gh.create_issue("Second", "```council\ndepends_on: [issue-1]\n```", labels=["council"])
    r.gh.create_issue("Not ours", labels=["docs"])
    bad = r.gh.create_issue("Bad", "```council\nverify: [x]\n```", labels=["council"])
    r.branch("feature", {"f.txt": "f\n"})
    pull = r.gh.open_pull("feature", "main", "A pull request")
    r.gh.site.issues[pull].labels.append("council")

    source = IssueSource(r.forge, [IssuesSource(labels=["council"], poll=5)], emit=emit)
    first = await source.first([TaskConfig(id="setup", prompt="x")])
    assert [task.id for task in first] == [f"issue-{one}", f"issue-{two}"]
    assert first[1].depends_on == ["issue-1"]
    assert source.tasks() == {"issue-1": one, "issue-2": two}
    assert len(_comments(r, bad)) == 1
    assert "unknown setting 'verify'" in _comments(r, bad)[0]
    skipped = [e for e in events if isinstance(e, IssueSkipped)]
    assert [e.issue for e in skipped] == [bad]
    assert skipped[0].url == f"{r.gh.web_url}/{OWNER}/{REPO}/issues/{bad}"
    assert [e.new for e in events if isinstance(e, IssuesRead)] == [["issue-1", "issue-2"]]

    hooks = Hooks({"setup": "queued", "issue-1": "running", "issue-2": "queued"})
    assert await source.poll_once(hooks) == []  # nothing new: nothing submitted again
    three = r.gh.create_issue("Third", "```council\ndepends_on: [issue-2]\n```", labels=["council"])
    assert await source.poll_once(hooks) == [f"issue-{three}"]
    assert await source.poll_once(hooks) == []
    assert len(_comments(r, bad)) == 1  # told once, however often it is read

    r.gh.human_close(two)  # queued: withdrawn
    r.gh.site.issues[one].labels.remove("council")  # running: left alone
    await source.poll_once(hooks)
    assert hooks.cancelled == ["issue-2"]
    withdrawn = [e for e in events if isinstance(e, IssueWithdrawn)]
    assert [(e.task_id, e.issue, e.reason) for e in withdrawn] == [
        ("issue-2", two, "the issue was closed")
    ]
    await source.poll_once(hooks)
    assert hooks.cancelled == ["issue-2"]


async def test_an_unknown_dependency_skips_the_issue_and_a_failed_read_withdraws_nothing(
    r: Rig,
) -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    waiting = r.gh.create_issue("W", "```council\ndepends_on: [nope]\n```", labels=["council"])
    source = IssueSource(r.forge, [IssuesSource(labels=["council"])], emit=emit)
    assert await source.first([]) == []
    assert "depends_on names 'nope', which is no task of the run" in _comments(r, waiting)[0]

    fine = r.gh.create_issue("Fine", labels=["council"])
    hooks = Hooks({})
    assert await source.poll_once(hooks) == [f"issue-{fine}"]
    r.gh.human_close(fine)
    r.gh.fail_next(20)  # the list cannot be read: nothing is withdrawn on that read
    await source.poll_once(hooks)
    assert hooks.cancelled == []
    failed = [e for e in events if isinstance(e, ForgeCallFailed)]
    assert failed and failed[0].action == "list issues"
    assert TOKEN not in repr(events)


# -- the issue hears what happens ---------------------------------------------------------


async def test_the_issue_hears_start_failure_landing_and_the_pull_request(r: Rig) -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    one = r.gh.create_issue("One", labels=["council"])
    two = r.gh.create_issue("Two", labels=["council"])
    voice = IssueVoice(r.forge, emit=emit)
    for number in (one, two):
        voice.follow(issue_task(await r.forge.get_issue(number)))
    voice.follow(TaskConfig(id="plain", prompt="x"))  # not an issue's: nothing said

    def dispatched(task: str, attempt: int) -> TaskDispatched:
        return TaskDispatched(task_id=task, adapter="a", attempt=attempt, branch=f"b/{attempt}")

    for event in (
        dispatched("issue-1", 1),
        dispatched("issue-1", 2),  # a second attempt: not said again
        dispatched("issue-2", 1),
        dispatched("plain", 1),
        TaskFailed(task_id="issue-2", error="verify failed: exit 1"),
        MergeCompleted(
            task_id="issue-1",
            status="merged",
            session_id="s",
            branch="b/2",
            base_branch="main",
            branch_tip="1" * 40,
            base_before="2" * 40,
            base_after="3" * 40,
            merge_commit="3" * 40,
        ),
    ):
        voice.hear(event)
    voice.close()
    await voice.serve()

    assert _comments(r, one) == [
        "CLI Council started work on this issue: task `issue-1` on branch `b/1`.",
        "Task `issue-1` landed on `main` in 333333333333.",
    ]
    assert r.gh.site.issues[one].labels == ["council"]
    assert (
        _comments(r, two)[-1]
        == "CLI Council could not finish task `issue-2`: verify failed: exit 1"
    )
    assert r.gh.site.issues[two].labels == ["council", FAILED]
    assert events == []

    r.branch("council/issue-1", {"a.txt": "a\n"})
    pull = await r.forge.open_pull(title="t", body="Closes #1", head="council/issue-1", base="main")
    await r.forge.add_labels(one, [WORKING])
    heard = IssueVoice(r.forge)  # the pull request's opening, as the landing side says it
    heard.follow(issue_task(await r.forge.get_issue(one)))
    heard.hear(
        PullOpened(
            task_id="issue-1",
            number=pull.pull.number,
            url=pull.pull.url,
            head="council/issue-1",
            base="main",
        )
    )
    heard.close()
    await heard.serve()
    assert (
        _comments(r, one)[-1]
        == f"Pull request #{pull.pull.number} carries this work: {pull.pull.url}"
    )
    assert r.gh.site.issues[one].labels == ["council", IN_REVIEW]


async def test_the_issue_hears_its_pull_requests_events(r: Rig) -> None:
    """With ``landing.via: pull_request`` the landing side's events reach the issue: the pull
    request named once (not again when found open after a crash); its merge takes the label
    off, and says nothing more (the merge closes the issue, whose timeline names it)."""
    one = r.gh.create_issue("One", labels=["council"])
    voice = IssueVoice(r.forge)
    voice.follow(issue_task(await r.forge.get_issue(one)))
    url = "https://example.invalid/o/r/pull/7"
    opened = {"task_id": "issue-1", "number": 7, "url": url, "head": "council/issue-1"}
    for event in (
        TaskDispatched(task_id="issue-1", adapter="a", attempt=1, branch="council/issue-1/1"),
        PullOpened(**opened, base="main"),
        PullOpened(**opened, base="main", created=False),  # found after a crash: said already
        PullMerged(task_id="issue-1", number=7, url=url, commit="4" * 40, by_council=True),
    ):
        voice.hear(event)
    voice.close()
    await voice.serve()

    assert _comments(r, one) == [
        "CLI Council started work on this issue: task `issue-1` on branch `council/issue-1/1`.",
        f"Pull request #7 carries this work: {url}",
    ]
    assert r.gh.site.issues[one].labels == ["council"]


async def test_a_forge_that_fails_is_a_warning_not_an_error(r: Rig) -> None:
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    one = r.gh.create_issue("One", labels=["council"])
    voice = IssueVoice(r.forge, emit=emit)
    voice.follow(issue_task(await r.forge.get_issue(one)))
    r.gh.fail_next(50, status=500)
    voice.hear(TaskFailed(task_id="issue-1", error="boom"))
    voice.close()
    await voice.serve()
    assert [type(e) for e in events] == [ForgeCallFailed]
    assert isinstance(events[0], ForgeCallFailed)
    assert events[0].issue == one and "500" in events[0].error


# -- a forge type from a plugin -------------------------------------------------------------


class TinyForge:
    """A forge of a plugin's: the issues it was given, nothing else."""

    def __init__(self, config: ForgeConfig, repo: Path, environ: Mapping[str, str]) -> None:
        self.repo = f"tiny/{config.options['project']}"
        self.where = repo

    def __getattr__(self, name: str) -> Any:
        async def call(*args: object, **kwargs: object) -> object:
            return []

        return call


class TinyPlugin:
    @hookimpl
    def register_forges(self, register: Any) -> None:
        register("tiny", TinyForge)


async def test_a_plugin_provides_a_forge_type(tmp_path: Path) -> None:
    host = load_plugins(builtins=(), extra=[TinyPlugin()], entry_points=[])
    assert host.forges.names() == ["github", "tiny"]
    config = ForgeConfig(type="tiny", options={"project": "p"})
    forge = await connect(config, tmp_path, {}, types=host.forges)
    assert isinstance(forge, TinyForge) and forge.repo == "tiny/p"
    assert await forge.list_issues() == []

    with pytest.raises(
        UsageError, match=r"unknown forge type 'tiy' \(did you mean 'tiny'\?\); known: github, tiny"
    ):
        await connect(ForgeConfig(type="tiy"), tmp_path, {}, types=host.forges)

    class Twice:
        @hookimpl
        def register_forges(self, register: Any) -> None:
            register("github", TinyForge)

    with pytest.raises(PluginError, match="forge type 'github', which is built in"):
        load_plugins(builtins=(), extra=[Twice()], entry_points=[])

    class NotAForge:
        @hookimpl
        def register_forges(self, register: Any) -> None:
            register("half", lambda config, repo, environ: object())

    half = load_plugins(builtins=(), extra=[NotAForge()], entry_points=[])
    with pytest.raises(PluginError, match="made object, which is not a Forge"):
        await connect(ForgeConfig(type="half"), tmp_path, {}, types=half.forges)


async def test_a_task_that_started_before_its_issue_closed_goes_on(r: Rig) -> None:
    async def emit(event: Event) -> None:
        pass

    class Started(Hooks):
        async def cancel(self, task_id: str) -> None:
            self.cancelled.append(task_id)
            raise CancelError(f"task {task_id!r} started (attempt 1, queued)")

    number = r.gh.create_issue("Retried", labels=["council"])
    source = IssueSource(r.forge, [IssuesSource(labels=["council"])], emit=emit)
    await source.first([])
    hooks = Started({"issue-1": "queued"})  # queued again for a retry
    r.gh.human_close(number)
    await source.poll_once(hooks)
    await source.poll_once(hooks)
    assert hooks.cancelled == ["issue-1"]  # asked once: it started, so it goes on


async def test_a_resumed_run_s_issue_tasks_are_withdrawn_and_told_too(r: Rig) -> None:
    async def emit(event: Event) -> None:
        pass

    number = r.gh.create_issue("From the first run", labels=["council"])
    task = issue_task(await r.forge.get_issue(number))
    source = IssueSource(r.forge, [IssuesSource(labels=["council"])], emit=emit)
    hooks = Hooks({"issue-1": "queued"}, {"issue-1": task})  # the session's, not this source's
    assert await source.poll_once(hooks) == []
    r.gh.human_close(number)
    await source.poll_once(hooks)
    assert hooks.cancelled == ["issue-1"]

    voice = IssueVoice(r.forge, lookup=hooks.task)  # never followed: found in the run
    voice.hear(TaskFailed(task_id="issue-1", error="boom"))
    voice.hear(TaskFailed(task_id="not-in-the-run", error="boom"))
    voice.close()
    await voice.serve()
    assert _comments(r, number) == ["CLI Council could not finish task `issue-1`: boom"]


async def test_a_forge_failing_poll_after_poll_is_said_once_and_its_return_once(
    r: Rig, caplog: pytest.LogCaptureFixture
) -> None:
    """``council serve`` against an unreachable forge said two warnings on every poll (the
    issue sources' and the steering's): a failure is said once while the forge keeps failing
    the same way, its return once, and a failure after that is news again."""
    events: list[Event] = []

    async def emit(event: Event) -> None:
        events.append(event)

    source = IssueSource(r.forge, [IssuesSource(labels=["council"])], emit=emit)
    await source.first([])
    hooks = Hooks({})
    with caplog.at_level(logging.WARNING, logger="orchestrator.forge.issue_source"):
        r.gh.fail_next(1000)  # every request answers 502 until the faults are taken back
        for _ in range(3):
            await source.poll_once(hooks)
        said = [m for m in caplog.messages if "failed" in m]
        assert len(said) == 1 and "list issues" in said[0], caplog.messages
        assert len([e for e in events if isinstance(e, ForgeCallFailed)]) == 1
        r.gh.site.clear_faults()  # the forge answers again
        await source.poll_once(hooks)
        assert caplog.messages[-1] == "forge: answering again"
        r.gh.fail_next(1000)
        await source.poll_once(hooks)
        r.gh.site.clear_faults()
    assert len([m for m in caplog.messages if "failed" in m]) == 2


async def test_a_task_the_run_took_since_its_list_was_read_is_not_refused(r: Rig) -> None:
    """The run's task list, read before the issues were, lacks an issue's task the run holds
    by the time it is submitted (a resumed session's, a start adding it): the same task,
    adopted without a word, never "already part of this run" on the issue."""
    number = r.gh.create_issue("One", "WRITE one.txt one", labels=["council"])

    async def emit(event: Event) -> None:
        return None

    source = IssueSource(r.forge, [IssuesSource(labels=["council"], poll=5)], emit=emit)
    issue_id = f"issue-{number}"
    held = issue_task(await r.forge.get_issue(number))

    class Late(Hooks):
        def statuses(self) -> Mapping[str, str]:
            return {}  # listed before the run took it

    hooks = Late({}, defined={issue_id: held})
    assert await source.poll_once(hooks) == []
    assert hooks.submitted == [] and _comments(r, number) == []
    assert source.tasks() == {issue_id: number}
