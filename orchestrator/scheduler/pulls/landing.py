"""Landing by pull request (``landing.via: pull_request``): a finished attempt's branch goes to
the remote as ``council/<task>`` and exactly one pull request is opened for it; the task waits
``in_review`` (claim released, locks let go, worktree retired, its branch kept) while
``pulls.follower`` follows the pull request to its merge or close.

Exactly once, across crashes and workstations: a keyed record (namespace ``pulls``, key the
task id) names the head branch before anything leaves the machine (crash point
``pull.intent``); the pull request is then opened, or found by its head when one is open
already (``open_pull`` answers it, ``created`` False), and its number recorded
after (crash point ``pull.opened`` in between). A crash anywhere here leaves the task
``running`` behind its claim: `council resume` requeues it, its phases recorded complete, and
this step runs again and finds the same pull request.

A feedback round's push of the head already reviewed (its build changed nothing) is said as
such (``pull.round_unchanged``), never as the pull request opened again.

Every branch passes the secret gate before it is pushed (``MergeQueue.publishable``); the pull
request's title and body are built by ``forge.public_text`` (``pull_body``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.events.pulls import PullOpened, PullRoundUnchanged
from orchestrator.events.tasks import TaskFailed
from orchestrator.forge.base import Forge, PullRequest
from orchestrator.forge.public_text import (
    PublicText,
    closes,
    compose,
    log_pointer,
    output,
    own,
    title,
)
from orchestrator.models import ClaimStatus, TaskState, TaskStatus, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.part import AttemptPart
from orchestrator.scheduler.attempts.writes import AttemptWrites
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.pulls.recorded import recorded_pull
from orchestrator.task_meta import PullState, TaskMeta
from orchestrator.workflow.handoffs.document import Handoff, load_handoff

__all__ = [
    "PULLS",
    "PULL_REMOTE",
    "PullLanding",
    "head_branch",
    "pull_body",
    "recorded_pull",
    "task_body",
    "with_pull",
]

PULLS = "pulls"  # keyed-record namespace: task id -> {head, base, number, url}
PULL_REMOTE = "origin"  # where heads are pushed when the run has no team remote
_PROMPT_LINES = 12  # of the task's prompt, at the top of the pull request's body
_SUMMARY_CHARS = 4000  # of each phase's summary
_SUMMARY_LINES = 80


def with_pull(
    metadata: Mapping[str, Any], seen: Mapping[str, Any], *, outcome: str | None = None
) -> dict[str, Any]:
    """``metadata`` with the pull request recorded as ``seen`` (and a failed task's
    ``outcome``), every other key as it was."""
    meta = TaskMeta.read(metadata)
    meta.pull.pull = PullState.model_validate(dict(seen))
    if outcome is not None:
        meta.retry.outcome = outcome
    return meta.dump()


def head_branch(task_id: str) -> str:
    """The pull request's head branch of ``task_id`` on the remote."""
    return f"council/{task_id}"


class PullLanding(AttemptPart):
    """An attempt's work opened as a pull request instead of merged (``lands``, through
    ``PullsPart``, which reads a feedback round and a landing through the forge from the
    task's record, ``recorded``)."""

    def __init__(self, run: RunContext, writes: AttemptWrites) -> None:
        self._run = run
        self._writes = writes

    async def lands(self, attempt: Attempt) -> bool:
        """``landing.via: pull_request``: the work lands later, through its pull request (a
        relanding goes through the queue)."""
        if self._run.services.config.landing.via != "pull_request" or attempt.relanding:
            return False
        await self.open(attempt)
        return True

    @property
    def remote(self) -> str:
        team = self._run.services.team
        return team.remote if team is not None else PULL_REMOTE

    def _forge(self) -> Forge:
        forge = self._run.services.forge
        if forge is None:
            raise RuntimeError("landing.via is pull_request but the run has no forge")
        return forge

    async def open(self, attempt: Attempt) -> None:
        """Push the attempt's branch and open (or find) its pull request; the task then
        waits ``in_review`` (module doc)."""
        assert attempt.session is not None
        services = self._run.services
        store, forge = services.store, self._forge()
        head, base = head_branch(attempt.key), services.config.base_branch
        before = await store.get_task_state(attempt.key)
        stack = TaskMeta.read(before.metadata if before else {}).pull.stack
        if stack is not None and stack.base:  # stacked: on the pull request below it
            base = stack.base
        record = await store.get_record(PULLS, attempt.key)
        known = dict(record.data) if record is not None else {}
        if known.get("head") != head or known.get("base") != base:
            known = {"head": head, "base": base}
            await store.put_record(PULLS, attempt.key, known)
        crash_point("pull.intent")
        tip = await services.merges.lending.publishable(attempt.session.branch)
        if stack is not None and stack.conflicts:  # a change below merged in with conflicts
            left = await services.merges.lending.stack_unresolved(tip, stack.conflicts)
            if left:
                await self._unresolved(attempt, left)
                return
        await services.merges.lending.push_pull_head(self.remote, tip, head)
        state = await store.get_task_state(attempt.key)
        pull, created = await self._pull_for(forge, known, head, base, attempt, state)
        crash_point("pull.opened")
        await store.put_record(
            PULLS, attempt.key, {**known, "number": pull.number, "url": pull.url}
        )
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata if state else {}))
        earlier = meta.pull.pull.dump() if meta.pull.pull is not None else {}
        round_ = meta.pull.pull.round or 0 if meta.pull.pull is not None else 0
        # A feedback round whose build changed nothing pushed the head already reviewed.
        unchanged = bool(meta.pull.pull_feedback) and earlier.get("head_sha") == tip
        # What earlier rounds answered stays (``pulls.follower``): never answered twice.
        summary = pull_summary(pull, round_=round_, tip=tip, created=created)
        meta.pull.pull = PullState.model_validate({**earlier, **summary})
        meta.worktree.session = None  # retired below: the branch keeps the work
        meta.landing.waiting = None
        meta.pull.pull_feedback = None  # answered by this push
        if meta.pull.stack is not None and meta.pull.stack.conflicts:
            meta.pull.stack = meta.pull.stack.model_copy(update={"conflicts": None})
        updates: dict[str, Any] = {
            "status": TaskStatus.IN_REVIEW,
            "current_phase": None,
            "error": None,
            "metadata": meta.dump(),
        }
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)
        await self._writes.release_locks(attempt)
        await self._writes.retire_worktree(attempt)
        if unchanged:
            await self._run.events.emit(
                PullRoundUnchanged(
                    task_id=attempt.key, number=pull.number, url=pull.url, round=round_,
                    head_sha=tip,
                )
            )  # fmt: skip
            return
        await self._run.events.emit(
            PullOpened(
                task_id=attempt.key,
                number=pull.number,
                url=pull.url,
                head=head,
                base=base,
                created=created,
            )
        )

    async def _unresolved(self, attempt: Attempt, paths: list[str]) -> None:
        """A stacked task's build left git's conflict markers (from a change below merged
        into it) in ``paths``: nothing is pushed; the task ends ``conflict``, its branch and
        its pull request kept as they were."""
        assert attempt.session is not None
        shown = ", ".join(p if p.isprintable() else repr(p) for p in paths[:20])
        error = (
            f"the change below could not be merged in: conflict markers are left in {shown}; "
            f"nothing was pushed, branch {attempt.session.branch} kept"
        )
        state = await self._run.services.store.get_task_state(attempt.key)
        meta = TaskMeta.read(self._writes.with_usage(attempt, state.metadata if state else {}))
        meta.retry.conflicts = list(paths)
        updates: dict[str, Any] = {
            "status": TaskStatus.CONFLICT,
            "current_phase": None,
            "error": error,
            "finished_at": utcnow(),
            "metadata": meta.dump(),
        }
        await self._writes.release(attempt, ClaimStatus.COMPLETED, updates)
        await self._writes.release_locks(attempt)
        await self._run.events.emit(TaskFailed(task_id=attempt.key, error=error))

    async def _pull_for(
        self,
        forge: Forge,
        known: dict[str, Any],
        head: str,
        base: str,
        attempt: Attempt,
        state: TaskState | None,
    ) -> tuple[PullRequest, bool]:
        """The pull request recorded or open for ``head``, else a new one."""
        number = known.get("number")
        if isinstance(number, int):
            pull = await forge.get_pull(number)
            if pull.state == "open":
                return pull, False
        # No look by its head first: one open for it already (a crash between the opening
        # and its record) makes the forge answer that one (``created`` False), and a look
        # would cost every task a request.
        body = await pull_body(self._run, attempt, state)
        title = _title(attempt.task.prompt, attempt.key)
        opened = await forge.open_pull(title=title, body=body, head=head, base=base)
        return opened.pull, opened.created


def pull_summary(
    pull: PullRequest, *, round_: int = 0, tip: str | None = None, created: bool = False
) -> dict[str, Any]:
    """The task's ``metadata.pull`` for ``pull`` before the follower looked at it; ``created``:
    opened just now (``fresh``: nobody can have reviewed it yet)."""
    return {
        "number": pull.number,
        "url": pull.url,
        "head": pull.head,
        "head_sha": tip or pull.head_sha,
        "state": "merged" if pull.merged else pull.state,
        "approvals": 0,
        "checks": "unknown",
        "round": round_,
        "waiting": "the pull request's first look",
        "human": False,
        "looked": False,  # the follower has not looked at it yet
        "fresh": created,
    }


def _title(prompt: str, task_id: str) -> PublicText:
    first = next((line.strip() for line in prompt.splitlines() if line.strip()), task_id)
    return title(f"{task_id}: {first}")


async def pull_body(run: RunContext, attempt: Attempt, state: TaskState | None) -> PublicText:
    """``task_body`` of the attempt's task."""
    return await task_body(run, attempt.task, attempt.key, state)


async def task_body(
    run: RunContext, task: TaskConfig, key: str, state: TaskState | None
) -> PublicText:
    """What the pull request of ``task`` (its record ``key``) says (built by
    ``forge.public_text``): the task's prompt (its first lines, quoted, masked, pinging
    nobody), what each phase did (its handoff's summary, the CLI's own words: fenced,
    bounded), the verify commands' results (a failed one's output only as a masked, bounded
    tail, with where the rest lives), and ``Closes #<issue>`` for a task made from an
    issue."""
    store = run.services.store
    lines = [line.rstrip() for line in task.prompt.strip().splitlines()]
    prompt = lines[:_PROMPT_LINES] + (["..."] if len(lines) > _PROMPT_LINES else [])
    parts = [
        own(f"Task `{key}`, done by CLI Council."),
        own("\n".join(f"> {x}" for x in prompt)),
    ]
    handoffs: list[Handoff] = []
    for phase in state.phases if state is not None else {}:
        handoff = await load_handoff(store, key, phase)
        if handoff is not None:
            handoffs.append(handoff)
    for handoff in handoffs:
        if handoff.summary.strip():
            parts += [
                own(f"### {handoff.phase} ({handoff.adapter})"),
                output(handoff.summary, lines=_SUMMARY_LINES, chars=_SUMMARY_CHARS, keep="head"),
            ]
    verify = next((h.verify for h in reversed(handoffs) if h.verify), [])
    if verify:
        marks = [
            f"- `{' '.join(check.argv)}`: {'passed' if check.ok else 'failed'}" for check in verify
        ]
        parts += [own("### Verify"), own("\n".join(marks))]
        failed = [check for check in verify if not check.ok and check.output_tail.strip()]
        for check in failed:
            parts.append(output(check.output_tail))
        if failed:
            parts.append(log_pointer(key))
    issue = TaskMeta.read(task.metadata).pull.issue  # the task's config, or its record
    if issue is None and state is not None:
        issue = TaskMeta.read(state.metadata).pull.issue
    if isinstance(issue, int) and not isinstance(issue, bool):
        parts.append(closes(issue))
    return compose(*parts)
