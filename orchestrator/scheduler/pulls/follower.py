"""Following the pull requests of the tasks ``in_review`` (``landing.via: pull_request``),
every ``landing.poll`` seconds and at once after one is opened.

For each: its reviews, the pull request and (``landing.checks: required``) the checks of
its head commit, all conditional requests (the forge keeps an ETag per URL, and a 304 costs no
rate limit); the review comments only when a review not seen before is listed (a comment always
belongs to a review). Only trusted people are heard (``orchestrator.forge.trust``: by default
those with write access; ``forge.trusted``): the others' reviews and comments never count,
never ask for changes and never reach a prompt, only their number is said in the ``waiting``
line. It is **gated** when at least ``landing.approvals`` trusted reviewers' latest deciding
review approves the head itself (an approval's ``commit_id``: one of an earlier head does not
count), none asks for changes, and every check succeeded (at least one reported). Reviewed
enough with ``merge: auto``, the pull request is not read first: its checks are those of the
head recorded, the one the approvals reviewed, and the merge expects that head, so the forge
refuses a merge of one a person merged, closed or pushed to meanwhile, and it is read then
(``PullOutcomes.not_merged``).

- gated, ``merge: auto``: council merges it through the API, expecting the head it looked at
  (``merge_pull(expected_sha=...)``); the forge's branch protection decides as for anyone.
  ``merged``: the remote's base is fetched and the work confirmed on it, then the task is
  ``done`` with ``merged_commit``. ``not_mergeable`` for a conflict with the moved base: a
  resolve round, as the merge queue's (built again on the remote's base, pushed to the same
  pull request), once, then ``conflict`` (the pull request named and left open);
  ``not_mergeable`` for a protection rule: waiting on a person; ``head_changed``: looked at
  again next pass, where the new head needs approvals of its own.
- gated, ``merge: manual``: it waits for a person to merge it.
- merged by a person: as council's merge, confirmed on the base.
- closed unmerged: the task ends ``failed`` (closed by a human); ``pull.closed``.
- otherwise it waits: for checks still running (the run goes on), or for a person (reviews,
  changes asked for, failing or no checks): ``metadata.pull.human``, and a run whose every
  unfinished task waits on a person ends (``Scheduler``), `council resume` follows again.

A forge that does not answer (5xx, rate limits past the client's own waiting, the network)
fails nothing: the task keeps waiting, said in its ``waiting`` line, and the next pass tries
again. Each write is compare-and-set on the task's version: a workstation that wrote first
wins, the other reads again next pass. Merged once: a pull request already merged is never
merged again (the forge refuses it, and the read after the refusal finds it merged), and a
crash between the merge and its record (crash point ``pull.merged``) is followed by the pull
request found merged.

Its parts: ``outcomes`` (what a merged, closed or not merged pull request writes, and what it
waits for), ``feedback`` (a feedback round: what reviewers and checks said, answered by a build)
and ``cancelled`` (a cancelled task's pull request closed).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import anyio

from orchestrator.errors import (
    CouncilError,
    ForgeAuthError,
    ForgeError,
    ForgeNotFound,
    StoreUnavailable,
    VersionConflict,
)
from orchestrator.forge.base import Forge, PullRequest, approvals, latest_reviews
from orchestrator.forge.trust import Trust, TrustRule
from orchestrator.models import TaskState, TaskStatus
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.pulls.cancelled import (
    CLOSING,
    close_cancelled_pull,
    open_pull_of_cancelled,
)
from orchestrator.scheduler.pulls.feedback import FeedbackRounds, MidReview
from orchestrator.scheduler.pulls.outcomes import PullOutcomes
from orchestrator.scheduler.pulls.recorded import recorded_pull
from orchestrator.scheduler.pulls.stack_view import below_first

__all__ = ["PullFollower", "waits_on_person"]

log = logging.getLogger(__name__)


def waits_on_person(state: TaskState) -> bool:
    """An ``in_review`` task nothing in this run can move: its pull request waits for a
    person (a review, a merge by hand, failing checks)."""
    pull = recorded_pull(state.metadata)
    return state.status == TaskStatus.IN_REVIEW and pull is not None and pull.get("human") is True


def _as_recorded(pull: Mapping[str, Any], base: str) -> PullRequest:
    """The pull request as the task's ``metadata.pull`` recorded it (open, at the head council
    pushed or last saw), for a look that goes straight to the merge without reading it."""
    return PullRequest(
        number=int(pull["number"]),
        title="",
        body="",
        state="open",
        merged=False,
        head=str(pull.get("head", "")),
        head_sha=str(pull.get("head_sha", "")),
        base=base,
        mergeable=None,
        mergeable_state="unknown",
        url=str(pull.get("url", "")),
    )


class PullFollower:
    def __init__(self, run: RunContext) -> None:
        self._run = run
        # The tasks whose pull request this run has looked at: what an earlier run recorded
        # (waiting on a person) may have changed since, so only a look of this run counts.
        self.looked: set[str] = set()
        # Each (task, head pushed) looked at or tried: a pull request just opened is looked at
        # at once, but a look that failed waits for the next poll.
        self.tried: set[tuple[str, str]] = set()
        # A pass and the run's decision to end never overlap (``end_when``), and no pass
        # runs once the run decided: its writes (a feedback round sends a task back to the
        # queue) are never made after the run ended on what it read before them.
        self._passing = anyio.Lock()
        self._ended = False
        self._trust: Trust | None = None
        self._outcomes = PullOutcomes(run)  # what a merge, a close, a refusal writes
        self._feedback = FeedbackRounds(run, self._trust_of)  # reviews answered by a build

    def unlooked(self, state: TaskState) -> bool:
        """An in-review task whose pull request, as last pushed, no pass has tried yet; or a
        cancelled task whose pull request is recorded open and no pass of this run has tried
        to close (the run does not end before it tried: ``Scheduler._settled``)."""
        run = self._run
        if run.services.forge is None or run.services.config.landing.via != "pull_request":
            return False
        if open_pull_of_cancelled(state) is not None:
            return (state.task_id, CLOSING) not in self.tried
        pull = recorded_pull(state.metadata)
        return (
            state.status == TaskStatus.IN_REVIEW
            and pull is not None
            and pull.get("looked") is False
            and (state.task_id, str(pull.get("head_sha"))) not in self.tried
        )

    def waits_on_person(self, state: TaskState) -> bool:
        """``waits_on_person``, as this run's own look found it; any ``in_review`` task when
        this run has no forge to follow it with (its config lands by merge now)."""
        if self._run.services.forge is None:
            return state.status == TaskStatus.IN_REVIEW
        return state.task_id in self.looked and waits_on_person(state)

    def _trust_of(self, forge: Forge) -> Trust:
        """Who is trusted on ``forge`` (``forge.trusted``), its answers kept for this run."""
        if self._trust is None:
            settings = self._run.services.config.forge
            self._trust = Trust(forge, TrustRule.of(settings.trusted if settings else ()))
        return self._trust

    async def end_when(self, settled: Callable[[], Awaitable[bool]]) -> bool:
        """Ask ``settled`` (does the run end, on a fresh read of its tasks?) while no pass is
        under way; when it does, no pass runs again. Its answer."""
        async with self._passing:
            self._ended = await settled()
            return self._ended

    async def follow(self, *, only_unlooked: bool = False) -> bool:
        """One pass over the run's ``in_review`` tasks (``only_unlooked``: those ``unlooked``);
        True when some task changed; False, looking at nothing, once the run decided to end
        (``end_when``)."""
        async with self._passing:
            if self._ended:
                return False
            return await self._pass(only_unlooked)

    async def _pass(self, only_unlooked: bool) -> bool:
        run = self._run
        forge = run.services.forge
        if forge is None or run.session_id is None:
            return False
        changed = False
        for state in await run.services.store.list_tasks(run.session_id):
            if state.task_id not in run.tasks:
                continue
            if open_pull_of_cancelled(state) is not None:
                if not only_unlooked or self.unlooked(state):
                    changed |= await self._close_cancelled(forge, state)
                    # Tried only once done: the run does not end while the close is under way.
                    self.tried.add((state.task_id, CLOSING))
                continue
            if state.status != TaskStatus.IN_REVIEW:
                continue
            pull = recorded_pull(state.metadata)
            if pull is None or not isinstance(pull.get("number"), int):
                continue
            if only_unlooked and not self.unlooked(state):
                continue
            self.tried.add((state.task_id, str(pull.get("head_sha"))))
            try:
                changed |= await self._follow_one(forge, state, pull)
                self.looked.add(state.task_id)
            except VersionConflict:
                changed = True  # written meanwhile (another workstation): read again
            except ForgeError as exc:
                changed |= await self._unanswered(state, pull, exc)
                self.looked.add(state.task_id)  # what it said is this run's own look
            except StoreUnavailable:
                raise  # the scheduler's outage handling says it once
            except CouncilError as exc:
                # Git (the remote unreachable for the fetch), a refused write: this pass
                # leaves the task as it is, the next one tries again; the run goes on.
                log.warning("task %s: following its pull request failed: %s", state.task_id, exc)
        return changed

    async def _close_cancelled(self, forge: Forge, state: TaskState) -> bool:
        """``close_cancelled_pull``; a forge that does not answer is tried again next pass."""
        try:
            await close_cancelled_pull(forge, self._run.services.store, state)
        except StoreUnavailable:
            raise
        except CouncilError as exc:
            log.warning("task %s: its pull request stays open: %s", state.task_id, exc)
            return False
        return True

    async def _follow_one(self, forge: Forge, state: TaskState, pull: dict[str, Any]) -> bool:
        number: int = pull["number"]
        landing = self._run.services.config.landing
        if pull.get("fresh") and landing.approvals > 0:
            # Opened just now: nobody has reviewed it, so it waits for approvals, known
            # without asking (five requests a task saved); the next poll asks.
            seen = {**pull, "fresh": False, "looked": True, "approvals": 0}
            why = f"#{number}: {landing.approvals} more approving review(s)"
            return await self._outcomes.note(state, seen, why, human=True)
        reviews = await forge.list_reviews(number)
        heard = await self._trust_of(forge).hear(reviews)
        latest = latest_reviews(heard.reviews)
        changes = sorted(n for n, r in latest.items() if r.state == "CHANGES_REQUESTED")

        def gate(head: str) -> tuple[int, bool]:
            # An approval counts for the commit it reviewed: a head that moved since needs
            # approving again.
            approved = len(approvals(list(latest.values()), head))
            return approved, approved >= landing.approvals and not changes

        # The pull request itself is read unless council is about to merge it: the merge,
        # expecting the head recorded (the one the approvals counted reviewed), refuses one
        # merged, closed or pushed to meanwhile, and ``PullOutcomes.not_merged`` reads it then (one
        # request a task saved on the happy path).
        pr, read = _as_recorded(pull, self._run.services.config.base_branch), False
        approved, reviewed = gate(pr.head_sha)
        if not (reviewed and landing.merge == "auto"):
            pr, read = await forge.get_pull(number), True
            if pr.merged:
                return await self._outcomes.merged(state, pull, pr, None)
            if pr.state == "closed":
                return await self._outcomes.closed(state, pull, pr)
            approved, reviewed = gate(pr.head_sha)
        checks, found = "ignored", None
        if landing.checks == "required":
            found = await forge.checks(pr.head_sha)
            checks = found.state
        checks_ok = checks in ("success", "ignored")
        seen = {
            **pull,
            "state": pr.state,
            "head_sha": pr.head_sha,
            "approvals": approved,
            "checks": checks,
            "looked": True,
        }
        seen.pop("ignored", None)
        if heard.ignored:  # reviews set aside: said, never read (``orchestrator.forge.trust``)
            seen["ignored"] = heard.ignored
        if reviewed and checks_ok:
            held = below_first(state, self._run.services.config.base_branch)
            if held is not None:  # stacked: it asks to land on the pull request below it
                return await self._outcomes.note(state, seen, held, human=True)
            if landing.merge == "manual":
                return await self._outcomes.note(
                    state, seen, f"a person to merge #{number}", human=True
                )
            # A merge the forge refused is asked again only once what council sees changed
            # (the head, a review, the checks): a person is on it meanwhile.
            seen["gate"] = f"{pr.head_sha}:{sorted(r.id for r in latest.values())}:{checks}"
            if pull.get("refused") == seen["gate"]:
                if not read:  # a person may have merged or closed it by hand meanwhile
                    again = await forge.get_pull(number)
                    if again.merged:
                        return await self._outcomes.merged(state, seen, again, None)
                    if again.state == "closed":
                        return await self._outcomes.closed(state, seen, again)
                return await self._outcomes.note(
                    state, seen, str(pull.get("waiting", "")), human=True
                )
            outcome = await forge.merge_pull(
                number, method=landing.merge_method, expected_sha=pr.head_sha
            )
            crash_point("pull.merged")
            if outcome.kind == "merged":
                return await self._outcomes.merged(state, seen, pr, outcome.sha)
            return await self._outcomes.not_merged(state, seen, pr, outcome.kind, outcome.message)
        if not read:  # reviewed, but its checks are not all green: what is the head now?
            pr = await forge.get_pull(number)
            if pr.merged:
                return await self._outcomes.merged(state, pull, pr, None)
            if pr.state == "closed":
                return await self._outcomes.closed(state, pull, pr)
            if found is not None and pr.head_sha != found.sha:  # pushed to meanwhile
                found = await forge.checks(pr.head_sha)
                checks = found.state
            seen.update(state=pr.state, head_sha=pr.head_sha, checks=checks)
            if checks == "success":
                return await self._outcomes.note(state, seen, f"#{number}: a new head", human=False)
            approved, reviewed = gate(pr.head_sha)
            seen["approvals"] = approved
        feedback = await self._feedback.unanswered(
            forge, pr, latest, found, seen, {r.id for r in reviews}
        )
        seen["reviews_seen"] = sorted(r.id for r in reviews)
        if isinstance(feedback, MidReview):
            # A review being submitted while we read (its comments listed, not yet itself):
            # answered whole on the next look, in one round, not as two.
            return await self._outcomes.note(
                state, seen, f"#{number}: a review coming in", human=False
            )
        if feedback is not None:
            return await self._feedback.send_back(state, seen, pr, feedback)
        if changes:
            why, human = f"changes asked for by {', '.join(changes)}", True
        elif checks == "pending":
            why, human = "checks still running", False
        elif checks == "failure":
            why, human = "failing checks", True
        elif checks == "none":
            why, human = "no checks reported on its head", True
        else:
            why = f"{landing.approvals - approved} more approving review(s)"
            stale = [
                r for r in latest.values() if r.state == "APPROVED" and r.commit_id != pr.head_sha
            ]
            if stale:
                why += f" of its head {pr.head_sha[:12]} ({len(stale)} approved an earlier head)"
            human = True
        if heard.ignored:
            why += f"; {heard.ignored} review(s) by people not trusted ignored (forge.trusted)"
        return await self._outcomes.note(state, seen, f"#{number}: {why}", human=human)

    async def _unanswered(self, state: TaskState, pull: dict[str, Any], exc: ForgeError) -> bool:
        """The forge did not answer (the run keeps following: the next pass asks again), or
        refused the token or lost the pull request (a person's to fix: it waits on them)."""
        log.warning(
            "task %s: the forge did not answer about its pull request: %s", state.task_id, exc
        )
        person = isinstance(exc, ForgeAuthError | ForgeNotFound)
        said = exc.status or "no answer"
        why = f"#{pull['number']}: the forge did not answer ({said}); trying again"
        if person:
            why = f"#{pull['number']}: {exc}"
        try:
            return await self._outcomes.note(state, {**pull, "looked": True}, why, human=person)
        except VersionConflict:
            return True
