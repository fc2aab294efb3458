"""The run's issue sources, read: before the run starts, then every ``poll`` while it goes on.

``IssueSource`` lists each source's issues (the forge's ETag cache makes an unchanged list a
304), turns each matching issue into its task (``issue_tasks``) and hands the run what is new
through ``RunHooks``: tasks whose id the run does not have yet, in an order where each one's
dependencies come first. It never adds a task twice (ids are stable: ``issue-<number>``). An
issue whose block is bad, or whose task depends on a task the run does not have, is skipped:
the issue is told once per reason (a comment, ``skip_comment``; once across restarts and
workstations too: ``told``) and the run's log says it (``issue.skipped``). So is an issue whose
author the run does not trust (``forge.authors: trusted``, the default: ``forge.trust``), whatever
its labels: its text would become a CLI's instructions. With ``forge.authors: anyone`` the label
is the only gate, so each label a source asks for must have been put on the issue by a person
the run trusts (the issue's events say who: ``Forge.labelled_by``, asked until it passed);
anyone else's labelled issue is skipped the same way.
A task this source added that has not started (``queued``) is cancelled when its issue no
longer matches (closed, or its labels removed): ``issue.withdrawn``. A source that cannot be
read is a warning (``forge.call_failed``) and nothing is withdrawn on that read; only the
first read, before the run starts, fails the run (a wrong token or repository is the
config's to fix).
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Awaitable, Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

import anyio

from orchestrator.config.sources import IssuesSource
from orchestrator.config.task import TaskConfig
from orchestrator.errors import (
    CancelError,
    ConfigError,
    ConfigIssue,
    CouncilError,
    ForgeError,
)
from orchestrator.events.base import Event
from orchestrator.events.issues import ForgeCallFailed, IssueSkipped, IssuesRead, IssueWithdrawn
from orchestrator.forge.base import Forge, Issue
from orchestrator.forge.issue_tasks import IssueProblem, issue_number, issue_task
from orchestrator.forge.outage import outage_of
from orchestrator.forge.public_text import PublicText, own
from orchestrator.forge.told import Told
from orchestrator.forge.trust import Trust
from orchestrator.safety import secret_mask

__all__ = ["Check", "Emit", "IssueSource", "Reading", "RunHooks", "skip_comment", "skip_key"]

_log = logging.getLogger(__name__)
_NOT_STARTED = "queued"

Emit = Callable[[Event], Awaitable[None]]
Check = Callable[[TaskConfig], str | None]
"""Why a new issue task cannot be part of the run (an adapter or a phase it names that the run
does not have), or None; its dependencies are the source's own to check."""


class RunHooks(Protocol):
    """What the source needs of the run it feeds (the ``Council`` gives the scheduler's)."""

    def statuses(self) -> Mapping[str, str]:
        """Every task of the run now: id -> status (``queued`` when it has not started)."""
        ...

    def task(self, task_id: str) -> TaskConfig | None:
        """The definition of a task of the run (its ``metadata`` says its issue)."""
        ...

    def submit(self, task: TaskConfig) -> None:
        """Add ``task`` to the run (``CouncilError`` when it cannot be part of it)."""
        ...

    async def cancel(self, task_id: str) -> None:
        """Cancel ``task_id``; ``CancelError`` when it started or ended already."""
        ...


@dataclass
class Reading:
    """One read of every source: the issues that match, by number, and the tasks they ask
    for (``complete`` False when a source could not be read)."""

    issues: dict[int, Issue] = field(default_factory=dict)
    tasks: list[TaskConfig] = field(default_factory=list)
    complete: bool = True


def skip_comment(reason: str) -> PublicText:
    """What an issue that cannot be a task is told: the problem in council's words (a bad
    ``council`` block's text is the issue author's, made safe by ``public_text.own``)."""
    return own(
        "CLI Council cannot take this issue as a task: "
        f"{reason}\n\nEdit the issue; it is read again while the run goes on."
    )


def skip_key(reason: str) -> str:
    """The fact of ``reason`` told: once per issue and reason, whatever restarts."""
    return "skip:" + hashlib.sha256(reason.encode("utf-8")).hexdigest()[:16]


class IssueSource:
    """Every ``issues:`` source of a run on one forge."""

    def __init__(
        self,
        forge: Forge,
        sources: Sequence[IssuesSource],
        *,
        emit: Emit,
        check: Check | None = None,
        told: Told | None = None,
        authors: Trust | None = None,
        labellers: Trust | None = None,
    ) -> None:
        if not sources:
            raise ValueError("IssueSource needs at least one source")
        self._forge = forge
        self._facts = told if told is not None else Told(forge)
        self._check = check
        self._authors = authors  # None: anyone's issue is taken (``forge.authors: anyone``)
        self._labellers = labellers  # None: whoever put the labels on (``authors`` decides)
        self._labelled: set[int] = set()  # issues whose labels were found put on by trusted
        self._sources = list(sources)
        self._emit = emit
        self._ours: dict[str, int] = {}  # task id -> issue number, for tasks this source added
        self._told: dict[int, str] = {}  # issue number -> the reason it was told it is skipped
        self._kept: set[str] = set()  # tasks found started when they were to be withdrawn
        self._reads = 0

    @property
    def forge(self) -> Forge:
        return self._forge

    @property
    def poll(self) -> float:
        """Seconds between reads: the shortest ``poll`` of the sources."""
        return min(source.poll for source in self._sources)

    def tasks(self) -> dict[str, int]:
        """The tasks this source added to the run: id -> issue number."""
        return dict(self._ours)

    async def first(self, config_tasks: Sequence[TaskConfig]) -> list[TaskConfig]:
        """The tasks the issues ask for before the run starts, each one's dependencies (the
        config's tasks or other issues') before it; a forge that cannot be read raises, and an
        issue whose task id a config task has already is a ``ConfigError``."""
        reading = await self._read(strict=True)
        known = {task.id for task in config_tasks}
        clashes = [task for task in reading.tasks if task.id in known]
        if clashes:
            raise ConfigError(
                [
                    ConfigIssue(
                        "sources",
                        None,
                        "tasks",
                        f"task id {task.id!r} of issue #{_number(task)} is already a task "
                        "of the run config; rename that task",
                    )
                    for task in clashes
                ]
            )
        ready = await self._admissible(reading, known)
        for task in ready:
            self._ours[task.id] = _number(task)
        await self._said(reading, ready, always=True)
        return ready

    async def poll_once(self, run: RunHooks) -> list[str]:
        """Read again: submit what is new, cancel what no longer matches; the ids submitted."""
        reading = await self._read(strict=False)
        if reading.complete and outage_of(self._forge).answered():
            _log.warning("forge: answering again")  # after the failure said (``outage``)
        statuses = run.statuses()
        self._adopt(run, statuses)
        ready = await self._admissible(reading, set(statuses))
        submitted: list[str] = []
        for task in ready:
            had = run.task(task.id)
            if had is not None and issue_number(had) == _number(task):
                # The run took this issue's task since its tasks were listed above (a resumed
                # session's, a start that added it): the same task, nothing to say.
                self._ours[task.id] = _number(task)
                continue
            try:
                run.submit(task)
            except CouncilError as exc:
                await self._skip(reading.issues[_number(task)], str(exc))
                continue
            self._ours[task.id] = _number(task)
            submitted.append(task.id)
        await self._said(reading, [t for t in ready if t.id in submitted], always=False)
        if reading.complete:
            await self._withdraw(reading, statuses, run)
        return submitted

    async def follow(self, run: RunHooks) -> None:
        """``poll_once`` every ``poll`` seconds, until cancelled; nothing it meets ends it."""
        while True:
            await anyio.sleep(self.poll)
            try:
                await self.poll_once(run)
            except Exception as exc:  # the run goes on without this read
                await self._warn("read the issue sources", None, exc)

    # -- reading --------------------------------------------------------------------------------

    async def _read(self, *, strict: bool) -> Reading:
        reading = Reading()
        asked: dict[int, set[str]] = {}  # issue -> the labels the sources listing it ask for
        for source in self._sources:
            try:
                found = await self._forge.list_issues(
                    state=source.state, labels=tuple(source.labels)
                )
            except ForgeError as exc:
                if strict:
                    raise
                reading.complete = False
                await self._warn("list issues", None, exc)
                continue
            for issue in found:
                reading.issues.setdefault(issue.number, issue)
                asked.setdefault(issue.number, set()).update(source.labels)
                self._facts.saw(issue.number, issue.comments)
        for number in sorted(reading.issues):
            issue = reading.issues[number]
            if not await self._author_trusted(issue):
                continue
            if not await self._labels_trusted(issue, asked[number]):
                continue
            try:
                reading.tasks.append(issue_task(issue))
            except IssueProblem as problem:
                await self._skip(issue, problem.reason)
        self._reads += 1
        return reading

    async def _author_trusted(self, issue: Issue) -> bool:
        """Whether ``issue``'s text may become a task (``forge.authors``): its author is
        trusted; else it is skipped, told why once. A forge that cannot say (the collaborators
        API away) leaves it for the next read."""
        if self._authors is None:
            return True
        try:
            if await self._authors.trusts(issue.author, issue.association):
                return True
        except ForgeError as exc:
            await self._warn("check the issue's author", issue.number, exc)
            return False
        who = issue.author or "a deleted account"
        await self._skip(
            issue,
            f"it was opened by {who}, who has no write access to the repository: CLI Council "
            "takes issues only from the people it trusts (forge.authors), since an issue's text "
            "becomes a CLI's instructions",
        )
        return False

    async def _labels_trusted(self, issue: Issue, labels: set[str]) -> bool:
        """Whether each of ``labels`` on ``issue`` was put there by a trusted person (only
        with ``labellers``: ``forge.authors: anyone``); else it is skipped, told why once."""
        if self._labellers is None or not labels or issue.number in self._labelled:
            return True
        try:
            by = {
                name.lower(): who
                for name, who in (await self._forge.labelled_by(issue.number)).items()
            }
            for label in sorted(labels):
                who = by.get(label.lower(), "")
                if await self._labellers.trusts(who):
                    continue
                whom = (
                    f"by {who}, who has no write access to the repository"
                    if who
                    else ("by nobody the issue's events name")
                )
                await self._skip(
                    issue,
                    f"its label `{label}` was put on {whom}: with forge.authors: anyone the "
                    "label is what lets an issue's text become a CLI's instructions, so CLI "
                    "Council takes it only from the people it trusts",
                )
                return False
        except ForgeError as exc:
            await self._warn("check who labelled the issue", issue.number, exc)
            return False
        self._labelled.add(issue.number)
        return True

    async def _admissible(self, reading: Reading, known: Collection[str]) -> list[TaskConfig]:
        """The new tasks of ``reading`` that can join a run holding ``known``, each after the
        tasks it depends on; the others are skipped with why."""
        pending: dict[str, TaskConfig] = {}
        for task in reading.tasks:
            if task.id in known:
                continue
            problem = self._check(task) if self._check is not None else None
            if problem is not None:
                await self._skip(reading.issues[_number(task)], problem)
                continue
            pending[task.id] = task
        available = set(known)
        ordered: list[TaskConfig] = []
        moved = True
        while pending and moved:
            moved = False
            for task_id, task in list(pending.items()):
                if all(dependency in available for dependency in task.depends_on):
                    ordered.append(task)
                    available.add(task_id)
                    del pending[task_id]
                    moved = True
        for task in pending.values():
            unknown = [d for d in task.depends_on if d not in available and d not in pending]
            if unknown:
                reason = (
                    f"`council` block: depends_on names {', '.join(map(repr, unknown))}, "
                    "which is no task of the run (an `issue-<number>` the sources bring, or a "
                    "task of the run config)"
                )
            else:
                cycle = sorted(d for d in task.depends_on if d in pending)
                reason = f"`council` block: depends_on makes a cycle with {', '.join(cycle)}"
            await self._skip(reading.issues[_number(task)], reason)
        return ordered

    async def _said(self, reading: Reading, new: list[TaskConfig], *, always: bool) -> None:
        if new or always:
            await self._event(IssuesRead(found=len(reading.issues), new=[t.id for t in new]))

    # -- withdrawing ----------------------------------------------------------------------------

    def _adopt(self, run: RunHooks, statuses: Mapping[str, str]) -> None:
        """The issue tasks the run has that this source did not add (a resumed run's)."""
        for task_id in statuses:
            if task_id in self._ours:
                continue
            task = run.task(task_id)
            number = issue_number(task) if task is not None else None
            if number is not None:
                self._ours[task_id] = number

    async def _withdraw(self, reading: Reading, statuses: Mapping[str, str], run: RunHooks) -> None:
        for task_id, number in list(self._ours.items()):
            if task_id in self._kept or number in reading.issues:
                continue
            if statuses.get(task_id) != _NOT_STARTED:
                continue
            reason = await self._why_gone(number)
            try:
                await run.cancel(task_id)
            except CancelError as exc:  # it started (or ended) before: it goes on
                _log.info("task %s of issue #%d not cancelled: %s", task_id, number, exc)
                self._kept.add(task_id)
                continue
            except CouncilError as exc:  # not written into the session yet: the next read
                _log.info("task %s of issue #%d not cancelled yet: %s", task_id, number, exc)
                continue
            await self._event(IssueWithdrawn(task_id=task_id, issue=number, reason=reason))

    async def _why_gone(self, number: int) -> str:
        try:
            issue = await self._forge.get_issue(number)
        except ForgeError:
            return "the issue no longer matches the run's sources"
        if issue.state == "closed" and all(s.state == "open" for s in self._sources):
            return "the issue was closed"
        return "the issue no longer carries the labels of the run's sources"

    # -- telling --------------------------------------------------------------------------------

    async def _skip(self, issue: Issue, reason: str) -> None:
        if self._told.get(issue.number) == reason:
            return
        self._told[issue.number] = reason
        _log.warning("issue #%d skipped: %s", issue.number, reason)
        await self._event(IssueSkipped(issue=issue.number, url=issue.url, reason=reason))
        try:
            await self._facts.tell(issue.number, skip_key(reason), skip_comment(reason))
        except ForgeError as exc:
            await self._warn("comment", issue.number, exc)

    async def _warn(self, action: str, number: int | None, exc: Exception) -> None:
        error = secret_mask.mask()(str(exc)) or type(exc).__name__
        if number is None and not outage_of(self._forge).failed(error):
            return  # the forge still fails as it did at the last poll: said then
        _log.warning("forge: %s failed: %s", action, error)
        await self._event(ForgeCallFailed(action=action, issue=number, error=error))

    async def _event(self, event: Event) -> None:
        try:
            await self._emit(event)
        except Exception:  # the log is the run's; a failed write must not end the reading
            _log.exception("could not record %s", event.type)


def _number(task: TaskConfig) -> int:
    number = issue_number(task)
    assert number is not None, task.id
    return number
