"""Stacked pull requests (``landing.pulls: stacked``, the run's or a task's): dependent work
reviewed as it is built, each pull request on the one below it (``PullStack``, a part of the
run, ``scheduler.parts.RunPart``).

- **Its start.** A stacked task whose dependencies are open for review (``in_review``, their
  pull request open) is dispatched at once (``stands_on``) and starts from their work
  (``fork_at``): one dependency, the head commit its pull request was last seen at; several, a
  merge of those heads made here (``merge.stack_git``), recorded and pushed as
  ``council/<task>-below``. Each is the exact commit recorded, fetched when another
  workstation pushed it; a branch someone moved on the remote is never built on. What it
  stands on is kept in its record (``metadata.pull.stack``: ``below``, ``on`` each head,
  ``start``, ``merge``, ``base``), and its pull request asks to land on ``base``: the branch
  below it (``pulls.landing``).
- **Its body** names the stack (``tick``): the pull requests below and above it, in a section
  of council's own words after the task's own body, rewritten whenever the stack changes
  (``told``: the section last written).
- **A change below** (a feedback round, a resolve round, a rebase: the head below is not the
  one ``on`` records, and the task below is in review again) is carried up: the new head
  merged into the work above by git (``Lending.stack_carry``); clean, it is pushed to the same
  pull request, the approvals then counting only for the new head, and the reviewers who had
  reviewed are asked again; with conflicts, the task goes back to its CLI, the conversation
  continued with the change below named and the conflicted files holding git's markers (a
  round not counted against ``landing.max_review_rounds``).
- **Landing in order.** A stacked pull request is never merged while it asks to land on a
  branch below it (``below_first``, which the follower asks before a merge, from the task's
  own record: so on every workstation). When every pull request below merged, it is retargeted
  to the base (``Forge.update_pull``, crash point ``pull.retarget`` before the record), and
  looked at afresh: its approvals and checks judged for its head as it is then.
- **A pull request below that ends unmerged** (closed, or its task failed, conflicted or was
  cancelled) stops the tasks stacked on it, ``failed`` with that reason (outcome
  ``stack_below``): their branches and pull requests are kept, ``council retry`` takes them up.

Until each of these is done, the task is not settled (``unlooked``): the run does not end on
it. Every write is compare-and-set on the version read; a workstation that wrote first wins.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from orchestrator.config.task import TaskConfig
from orchestrator.errors import CouncilError, ForgeError, StoreUnavailable, VersionConflict
from orchestrator.events.pulls import PullStackCarried, PullStackRetargeted
from orchestrator.events.tasks import TaskFailed
from orchestrator.forge.base import Forge, latest_reviews
from orchestrator.forge.public_text import compose
from orchestrator.forge.trust import Trust, TrustRule
from orchestrator.merge.stack_git import Carried
from orchestrator.models import TERMINAL_TASK_STATUSES, TaskState, TaskStatus, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.parts import RunPart
from orchestrator.scheduler.pulls.feedback import Feedback, FeedbackRounds
from orchestrator.scheduler.pulls.landing import head_branch, task_body
from orchestrator.scheduler.pulls.outcomes import pull_remote, write
from orchestrator.scheduler.pulls.stack_view import (
    below_first,
    board_note,
    open_for_review,
    pull_of,
    shown_path,
    stack_of,
    stack_section,
    stacked_above,
)
from orchestrator.task_meta import PullState, StackState, TaskMeta

__all__ = [
    "BELOW_SUFFIX",
    "STACK_OUTCOME",
    "PullStack",
    "below_first",
    "stack_of",
    "stack_section",
    "stacked_above",
]

log = logging.getLogger(__name__)

BELOW_SUFFIX = "-below"  # council/<task>-below: the merge of several heads a task stands on
STACK_OUTCOME = "stack_below"  # a stacked task stopped: a pull request below ended unmerged
_PATHS_SAID = 20  # of a conflict's paths, named


class PullStack(RunPart):
    """The stacked pull requests of the run ``run`` (module doc)."""

    def __init__(self, run: RunContext) -> None:
        self._run = run
        self._pending: set[str] = set()  # stacked tasks with something left to do
        self._notes: dict[str, str] = {}  # the board's word on each task of a stack
        self._trust: Trust | None = None

    def _forge(self) -> Forge | None:
        services = self._run.services
        if services.config.landing.via != "pull_request":
            return None
        return services.forge

    # -- its start -------------------------------------------------------------------------

    def stands_on(self, task: TaskConfig, states: Mapping[str, TaskState]) -> frozenset[str]:
        if self._forge() is None or not self._run.services.config.stacked(task):
            return frozenset()
        return frozenset(d for d in task.depends_on if open_for_review(states.get(d)))

    async def fork_at(self, attempt: Attempt, state: TaskState) -> str | None:
        """The commit a stacked task's new worktree starts from (module doc), recorded with
        what it stands on; None (the base) when nothing it depends on is in review."""
        task = attempt.task
        if (
            self._forge() is None
            or attempt.relanding
            or not self._run.services.config.stacked(task)
        ):
            return None
        services = self._run.services
        store = services.store
        deps = {dep: await store.get_task_state(dep) for dep in task.depends_on}
        below = [dep for dep in task.depends_on if open_for_review(deps[dep])]
        if not below:
            return None
        heads: dict[str, str] = {}
        for dep in below:
            pull = pull_of(deps[dep])
            assert pull is not None and pull.head_sha  # open for review
            heads[dep] = pull.head_sha
        lending, remote = services.merges.lending, pull_remote(services)
        named = ", ".join(below)
        start = await lending.stack_start(
            remote,
            [(head_branch(dep), heads[dep]) for dep in below],
            f"council: {attempt.key} starts on {named}\n\nThe pull requests below it, merged.",
        )
        if len(below) == 1:
            base = head_branch(below[0])
        else:
            base = head_branch(attempt.key) + BELOW_SUFFIX
            await lending.push_pull_head(remote, start, base)
        current = await store.get_task_state(attempt.key)
        meta = TaskMeta.read(current.metadata if current else state.metadata)
        rebuilt = meta.pull.stack.rebuilt if meta.pull.stack is not None else None
        meta.pull.stack = StackState(
            below=below,
            on=heads,
            start=start,
            merge=start if len(below) > 1 else None,
            base=base,
            rebuilt=rebuilt,
        )
        await store.update_task_state(
            attempt.key, {"metadata": meta.dump()}, fencing_token=attempt.token
        )
        return start

    # -- the run's points ------------------------------------------------------------------

    async def tick(self, states: Mapping[str, TaskState]) -> None:
        forge = self._forge()
        if forge is None:
            return
        above = stacked_above(states.values())
        self._notes = {
            task_id: board_note(task_id, states, above)
            for task_id in {*above, *(t for t, s in states.items() if stack_of(s))}
        }
        pending: set[str] = set()
        for task_id, state in states.items():
            stack = stack_of(state)
            if task_id not in self._run.tasks or (stack is None and task_id not in above):
                continue
            try:
                if await self._settle(forge, state, stack or StackState(), states, above):
                    pending.add(task_id)
            except VersionConflict:
                pending.add(task_id)  # written meanwhile: read again next tick
            except StoreUnavailable:
                raise
            except CouncilError as exc:  # the forge or git did not answer: next tick again
                pending.add(task_id)
                log.warning("task %s: its stack: %s", task_id, exc)
        self._pending = pending

    def unlooked(self, state: TaskState) -> bool:
        return state.task_id in self._pending

    async def end_when(self, ends: Callable[[], Awaitable[bool]]) -> bool:
        """The run's end is decided on a fresh read of its tasks: what the tick's read missed
        (the last pull request below merged just after it) is done first, then judged."""
        session = self._run.session_id
        if self._forge() is not None and session is not None:
            fresh = await self._run.services.store.list_tasks(session)
            await self.tick({s.task_id: s for s in fresh})
        return await ends()

    def notes(self) -> Mapping[str, str]:
        """The board's word on each task of a stack: ``stack: on #12 one, under #14 three``."""
        return self._notes

    async def _settle(
        self,
        forge: Forge,
        state: TaskState,
        stack: StackState,
        states: Mapping[str, TaskState],
        above: Mapping[str, list[str]],
    ) -> bool:
        """One look at a task of a stack; True when something is left to do for it."""
        below = [(dep, states.get(dep)) for dep in stack.below or []]
        ended = [
            (dep, s)
            for dep, s in below
            if s is not None and s.status in TERMINAL_TASK_STATUSES and s.status != TaskStatus.DONE
        ]
        if ended and state.status == TaskStatus.RUNNING:
            return True  # stopped once its attempt is over (never under its claim)
        if ended:
            return await self._stop(state, *ended[0])
        if state.status != TaskStatus.IN_REVIEW:
            return False
        pull = pull_of(state)
        if pull is None or not isinstance(pull.number, int) or pull.state != "open":
            return False
        base = self._run.services.config.base_branch
        if stack.base and stack.base != base:
            if all(s is not None and s.status == TaskStatus.DONE for _, s in below):
                return await self._retarget(forge, state, stack, pull)
            for dep, below_state in below:
                below_pull = pull_of(below_state)
                if (
                    open_for_review(below_state)
                    and below_pull is not None
                    and (stack.on or {}).get(dep) != below_pull.head_sha
                ):
                    assert below_state is not None
                    return await self._carry(forge, state, stack, pull, dep, below_state)
        return await self._tell(forge, state, stack, pull, states, above)

    async def _stop(self, state: TaskState, dep: str, below: TaskState) -> bool:
        """A pull request below ended unmerged: the task stops, its work kept."""
        if state.status in TERMINAL_TASK_STATUSES:
            return False
        below_pull = pull_of(below)
        number = f"#{below_pull.number}, " if below_pull and below_pull.number else ""
        closed = TaskMeta.read(below.metadata).retry.outcome == "pull_closed"
        how = "was closed without merging" if closed else f"ended ({below.status})"
        error = (
            f"stopped: the pull request below it ({number}task {dep}) {how}; "
            "its work is kept on its branch"
            + (" and its pull request stays open" if pull_of(state) else "")
            + f": `council retry {state.task_id}` once {dep} is retried"
        )
        meta = TaskMeta.read(state.metadata)
        meta.retry.outcome = STACK_OUTCOME
        updates: dict[str, Any] = {
            "status": TaskStatus.FAILED,
            "finished_at": utcnow(),
            "current_phase": None,
            "error": error,
            "metadata": meta.dump(),
        }
        await write(self._run, state, updates)
        await self._run.events.emit(
            TaskFailed(task_id=state.task_id, error=error, outcome=STACK_OUTCOME)
        )
        return False

    async def _retarget(
        self, forge: Forge, state: TaskState, stack: StackState, pull: PullState
    ) -> bool:
        """Every pull request below merged: this one lands on the base now, judged afresh."""
        assert pull.number is not None
        base, was = self._run.services.config.base_branch, str(stack.base)
        moved = await forge.update_pull(pull.number, base=base)
        crash_point("pull.retarget")
        meta = TaskMeta.read(state.metadata)
        meta.pull.stack = stack.model_copy(update={"base": base})
        seen = {
            **pull.dump(),
            "head_sha": moved.head_sha,
            "looked": False,
            "fresh": False,
            "human": False,
            "waiting": f"retargeted to {base}: its approvals and checks judged again",
        }
        seen.pop("gate", None)
        seen.pop("refused", None)
        meta.pull.pull = PullState.model_validate(seen)
        await write(self._run, state, {"metadata": meta.dump()})
        await self._run.events.emit(
            PullStackRetargeted(
                task_id=state.task_id, number=pull.number, url=moved.url, base=base, was=was
            )
        )
        return True  # the follower's look at it is still to come

    async def _carry(
        self,
        forge: Forge,
        state: TaskState,
        stack: StackState,
        pull: PullState,
        dep: str,
        below: TaskState,
    ) -> bool:
        """The pull request below changed: its new head merged into this task's work."""
        assert pull.number is not None
        below_pull = pull_of(below)
        assert below_pull is not None and below_pull.number is not None
        new = str(below_pull.head_sha)
        services = self._run.services
        remote, head = pull_remote(services), head_branch(state.task_id)
        kept = state.branch or head
        message = f"council: {state.task_id} carried onto #{below_pull.number} ({dep}) as it is now"
        carried = await services.merges.lending.stack_carry(
            remote, kept, (head, str(pull.head_sha)), (head_branch(dep), new), message
        )
        on = {**(stack.on or {}), dep: new}
        moved = stack.model_copy(update={"on": on, "rebuilt": (stack.rebuilt or 0) + 1})
        if carried.conflicts:
            return await self._send_back(state, moved, pull, dep, below_pull.number, carried)
        await services.merges.lending.push_pull_head(remote, carried.commit, head)
        meta = TaskMeta.read(state.metadata)
        meta.pull.stack = moved
        seen = {
            **pull.dump(),
            "head_sha": carried.commit,
            "round": (pull.round or 0) + 1,
            "looked": False,
            "fresh": False,
            "approvals": 0,
            "human": False,
            "waiting": f"rebuilt on #{below_pull.number}: reviews asked again",
        }
        meta.pull.pull = PullState.model_validate(seen)
        await write(self._run, state, {"metadata": meta.dump()})
        await self._run.events.emit(
            PullStackCarried(
                task_id=state.task_id,
                number=pull.number,
                below=below_pull.number,
                below_task=dep,
                below_sha=new,
                clean=True,
                head_sha=carried.commit,
            )
        )
        await self._ask_again(forge, pull.number)
        return True  # the follower's look at it is still to come

    async def _send_back(
        self,
        state: TaskState,
        moved: StackState,
        pull: PullState,
        dep: str,
        below_number: int,
        carried: Carried,
    ) -> bool:
        """The change below conflicts with this task's work: its CLI resolves it, the
        conversation continued with the change named (module doc)."""
        assert pull.number is not None
        paths = [shown_path(p) for p in carried.conflicts[:_PATHS_SAID]]
        text = (
            f"The pull request below this one, #{below_number} (task {dep}), changed: its head "
            f"is now {moved.on[dep] if moved.on else ''}. Its change was merged into your branch "
            "and these files conflict; they hold git's conflict markers: "
            + ", ".join(paths)
            + ". Resolve every conflict, keeping both the change below and your own work, "
            "and remove the markers."
        )
        feedback = Feedback(
            text=text,
            reasons=f"#{below_number} below changed; conflicts in {len(carried.conflicts)} file(s)",
            answered=list(pull.answered or []),
            heads=list(pull.answered_heads or []),
        )

        def also(meta: TaskMeta) -> None:
            meta.pull.stack = moved.model_copy(update={"conflicts": list(carried.conflicts)})

        rounds = FeedbackRounds(self._run, self._trust_of)
        pr = await self._forge_or_raise().get_pull(pull.number)
        await rounds.send_back(state, pull.dump(), pr, feedback, counted=False, also=also)
        await self._run.events.emit(
            PullStackCarried(
                task_id=state.task_id,
                number=pull.number,
                below=below_number,
                below_task=dep,
                below_sha=str(moved.on[dep] if moved.on else ""),
                clean=False,
                conflicts=paths,
            )
        )
        return False

    def _forge_or_raise(self) -> Forge:
        forge = self._forge()
        if forge is None:
            raise CouncilError("stacked pull requests need a forge")
        return forge

    def _trust_of(self, forge: Forge) -> Trust:
        if self._trust is None:
            settings = self._run.services.config.forge
            self._trust = Trust(forge, TrustRule.of(settings.trusted if settings else ()))
        return self._trust

    async def _ask_again(self, forge: Forge, number: int) -> None:
        """The trusted people who reviewed the pull request asked to review its new head."""
        try:
            heard = await self._trust_of(forge).hear(await forge.list_reviews(number))
            who = sorted(latest_reviews(heard.reviews))
            if who:
                await forge.request_reviews(number, who)
        except ForgeError as exc:  # the new head waits for approvals of its own anyway
            log.warning("#%s: reviews not asked again: %s", number, exc)

    # -- its body --------------------------------------------------------------------------

    async def _tell(
        self,
        forge: Forge,
        state: TaskState,
        stack: StackState,
        pull: PullState,
        states: Mapping[str, TaskState],
        above: Mapping[str, list[str]],
    ) -> bool:
        """The pull request's body names its stack as it is now (written when it changed)."""
        assert pull.number is not None
        section = stack_section(state.task_id, states, above)
        if section == stack.told:
            return False
        task = self._run.tasks[state.task_id]
        body = compose(await task_body(self._run, task, state.task_id, state), section)
        await forge.update_pull(pull.number, body=body)
        meta = TaskMeta.read(state.metadata)
        meta.pull.stack = StackState.model_validate({**stack.dump(), "told": section})
        await write(self._run, state, {"metadata": meta.dump()})
        return False
