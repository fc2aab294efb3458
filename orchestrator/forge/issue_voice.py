"""The issue hears what happens to its task, from the run's events.

``IssueVoice.hear`` is a run subscriber (``Council.subscribe``): it only queues, and
``serve`` (in the Council's task group) makes the forge calls one after another, so a slow
forge never slows the run. For a task made from an issue (``follow``):

- its first ``task.dispatched``: a comment saying work started (once per task and failure
  told: not per attempt nor per restart, but again after a failure), the label
  ``council:working`` (``council:failed`` removed, from an earlier run);
- ``budget.exceeded`` with ``budgets.on_exceed: ask``: a comment on the issue of the task
  whose call found the budget spent, asking whether to go on and saying how (the run holds
  what that budget covers meanwhile; ``forge.steering`` takes the answer);
- ``task.failed``: ``council:failed``, ``council:working`` removed, and a comment with the
  reason (``failure_text``: its first line, and of the rest, a verify command's output, only a
  masked and bounded tail, with where the whole lives);
- ``merge.completed`` or ``merge.already_merged``: ``council:working`` removed and a comment
  naming the commit on the base;
- with ``landing.via: pull_request``, ``pull.opened``: a comment naming
  the pull request (once per pull request), ``council:in-review``
  in place of ``council:working``; ``pull.merged``: ``council:in-review`` removed (no comment:
  the pull request's ``Closes #N`` closes the issue, and its timeline names the merge).

Every comment is built by ``public_text`` and told once per fact (``told``: a hidden marker in
the comment, read back from the issue), across restarts and workstations.

A forge call that fails is a warning in the log and a ``forge.call_failed`` event; it never
fails the run. The forge's errors never carry the token.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio
from anyio.streams.memory import MemoryObjectReceiveStream, MemoryObjectSendStream

from orchestrator.config.task import TaskConfig
from orchestrator.errors import ForgeError
from orchestrator.events.base import Event
from orchestrator.events.issues import ForgeCallFailed
from orchestrator.events.kinds import EventType
from orchestrator.forge.base import FAILED, IN_REVIEW, WORKING, Forge
from orchestrator.forge.issue_tasks import issue_number
from orchestrator.forge.public_text import PublicText, compose, log_pointer, output, own
from orchestrator.forge.told import Told
from orchestrator.safety import secret_mask

__all__ = ["IssueVoice", "failure_text"]

_log = logging.getLogger(__name__)
_HEARD = frozenset(
    {
        EventType.TASK_DISPATCHED,
        EventType.TASK_FAILED,
        EventType.MERGE_COMPLETED,
        EventType.MERGE_ALREADY_MERGED,
        EventType.PULL_OPENED,
        EventType.PULL_MERGED,
        EventType.BUDGET_EXCEEDED,
    }
)

Emit = Callable[[Event], Awaitable[None]]
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9:._#/-]")


def failure_text(task_id: str, reason: str) -> PublicText:
    """What the issue is told of task ``task_id``'s failure: the reason's first line in council's
    words; the rest of it (a verify command's output) only as a masked, bounded tail, with
    where the whole lives."""
    head, _, rest = reason.strip().partition("\n")
    said = own(f"CLI Council could not finish task `{task_id}`: {head}")
    if not rest.strip():
        return said
    return compose(said, output(rest), log_pointer(task_id))


def _key(*parts: str) -> str:
    return _UNSAFE_KEY.sub("-", ":".join(parts))[:200]


def _count(facts: frozenset[str], prefix: str) -> int:
    return sum(1 for fact in facts if fact.startswith(prefix))


@dataclass(frozen=True)
class _Said:
    """One thing to tell issue ``number`` about task ``task_id``."""

    kind: str
    task_id: str
    number: int
    data: dict[str, object]


class IssueVoice:
    def __init__(
        self,
        forge: Forge,
        *,
        emit: Emit | None = None,
        lookup: Callable[[str], TaskConfig | None] | None = None,
        told: Told | None = None,
    ) -> None:
        self._forge = forge
        self._told = told if told is not None else Told(forge)  # shared with the sources
        self._emit = emit
        self._lookup = lookup  # the run's own definition of a task not followed (resumed)
        self._issues: dict[str, int] = {}  # task id -> issue number
        # An issue's labels as the forge last answered them (adding labels answers the whole
        # list): a label known not to be there is not asked to be removed (a request each).
        self._labels: dict[int, set[str]] = {}
        self._started: set[str] = set()
        send, receive = anyio.create_memory_object_stream[_Said](math.inf)
        self._send: MemoryObjectSendStream[_Said] = send
        self._receive: MemoryObjectReceiveStream[_Said] = receive

    def follow(self, task: TaskConfig) -> None:
        """Tell the issue ``task`` was made from what happens to it (nothing for another; a
        task of the run's the ``lookup`` finds is told without it)."""
        number = issue_number(task)
        if number is not None:
            self._issues[task.id] = number

    def hear(self, event: Event) -> None:
        """A run subscriber: queue what an issue must be told (returns at once)."""
        if event.type not in _HEARD:
            return
        data = event.data
        if event.type == EventType.BUDGET_EXCEEDED and data.get("action") != "ask":
            return
        task_id = data.get("task_id")
        if not isinstance(task_id, str):
            return
        number = self._issues.get(task_id)
        if number is None and self._lookup is not None:
            found = self._lookup(task_id)
            number = issue_number(found) if found is not None else None
        if number is None:
            return
        if event.type == EventType.TASK_DISPATCHED:
            if task_id in self._started:
                return
            self._started.add(task_id)
        try:
            self._send.send_nowait(_Said(event.type, task_id, number, data))
        except anyio.ClosedResourceError:
            _log.info("issue #%d not told of %s: the run ended", number, event.type)

    def close(self) -> None:
        """No more events: ``serve`` returns once it said what is queued."""
        self._send.close()

    async def serve(self) -> None:
        """Say what is queued, one forge call after another, until ``close``."""
        async with self._receive:
            async for said in self._receive:
                try:
                    await self._say(said)
                except ForgeError as exc:
                    await self._warn(said, exc)
                except Exception as exc:  # a plugin's forge: whatever it raises, the run goes on
                    await self._warn(said, exc)

    async def _say(self, said: _Said) -> None:
        number, task, told = said.number, said.task_id, self._told
        if said.kind == EventType.TASK_DISPATCHED:
            branch = said.data.get("branch")
            on = f" on branch `{branch}`" if branch else ""
            failures = _count(await told.facts(number), f"failed:{task}:")
            await told.tell(
                number,
                _key("started", task, str(failures)),
                own(f"CLI Council started work on this issue: task `{task}`{on}."),
            )
            await self._label(number, add=WORKING, remove=(FAILED,))
        elif said.kind == EventType.TASK_FAILED:
            reason = str(said.data.get("error") or "no reason given")
            await self._label(number, add=FAILED, remove=(WORKING, IN_REVIEW))
            starts = _count(await told.facts(number), f"started:{task}:")
            await told.tell(number, _key("failed", task, str(starts)), failure_text(task, reason))
        elif said.kind == EventType.PULL_OPENED:
            pull, url = int(str(said.data.get("number"))), str(said.data.get("url"))
            await told.tell(
                number,
                _key("pull", task, str(pull)),
                own(f"Pull request #{pull} carries this work: {url}", refs=(pull,)),
            )
            await self._label(number, add=IN_REVIEW, remove=(WORKING,))
        elif said.kind == EventType.BUDGET_EXCEEDED:
            scope = str(said.data.get("scope") or "run")
            name = scope.split(":", 1)[-1] if scope.startswith("adapter:") else scope.split(":")[0]
            limit = said.data.get("limit_usd") or said.data.get("limit_tokens")
            await told.tell(
                number,
                _key("budget", task, scope, str(limit)),
                own(
                    f"CLI Council paused task `{task}`: {said.data.get('message')}. Nothing more "
                    "starts in that budget until it is raised. Should it go on? Someone with "
                    "write access answers with a comment of one line, `/council go on` (room for "
                    "the budget's configured limit once more) or `/council raise <usd>` (that many "
                    f"dollars more); or `council budget raise <config> {name} --usd <limit>` (or "
                    f"raise `{said.data.get('field')}` in the config and resume)."
                ),
            )
        elif said.kind == EventType.PULL_MERGED:
            # No comment: the pull request said it carries the work, and its merge closes the
            # issue (``Closes #N``), which the issue's own timeline shows with the commit.
            await self._label(number, remove=(IN_REVIEW, WORKING))
        else:
            commit = said.data.get("merge_commit") or said.data.get("base_after")
            base = said.data.get("base_branch") or "the base branch"
            await self._label(number, remove=(WORKING,))
            landed = f" in {str(commit)[:12]}" if commit else ""
            await told.tell(
                number,
                _key("landed", task, str(commit or "-")[:12]),
                own(f"Task `{task}` landed on `{base}`{landed}."),
            )

    async def _label(
        self, number: int, *, add: str | None = None, remove: tuple[str, ...] = ()
    ) -> None:
        """Add ``add``, then remove each of ``remove`` the issue has (or may have: not known)."""
        forge, known = self._forge, self._labels.get(number)
        if add is not None:
            known = self._labels[number] = set(await forge.add_labels(number, [add]))
        for label in remove:
            if known is None or label in known:
                left = await forge.remove_label(number, label)
                if left is not None:  # the forge said what is left: known from now on
                    known = self._labels[number] = set(left)
                elif known is not None:
                    known.discard(label)

    async def _warn(self, said: _Said, exc: Exception) -> None:
        error = secret_mask.mask()(str(exc)) or type(exc).__name__
        action = f"tell issue #{said.number} of {said.kind}"
        _log.warning("forge: %s failed: %s", action, error)
        if self._emit is None:
            return
        try:
            await self._emit(ForgeCallFailed(action=action, issue=said.number, error=error))
        except Exception:
            _log.exception("could not record forge.call_failed")
