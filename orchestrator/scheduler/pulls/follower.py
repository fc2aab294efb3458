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
(``_not_merged``).

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
"""

from __future__ import annotations

import logging
import secrets
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
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
from orchestrator.events.merge import MergeResolveRound
from orchestrator.events.pulls import PullClosed, PullFeedbackRound, PullMerged, PullNotMerged
from orchestrator.events.tasks import TaskFailed
from orchestrator.forge.base import (
    Checks,
    Forge,
    PullRequest,
    Review,
    ReviewComment,
    approvals,
    latest_reviews,
)
from orchestrator.forge.public_text import own
from orchestrator.forge.trust import Trust, TrustRule
from orchestrator.ids import derived_id
from orchestrator.models import PhaseStatus, TaskState, TaskStatus, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.attempt import MAX_RESOLVE_ROUNDS, RESOLVE_ROUNDS, WORKTREE
from orchestrator.scheduler.context import RunContext, Services
from orchestrator.scheduler.pulls.landing import PULL, PULL_FEEDBACK, PULL_REMOTE
from orchestrator.state.protocol import StateStore
from orchestrator.workflow.progress import BUILD
from orchestrator.workflow.resume import FEEDBACK_OUTCOME

__all__ = [
    "Feedback",
    "PullFollower",
    "close_cancelled_pull",
    "open_pull_of_cancelled",
    "pull_remote",
    "resolve_round",
    "waits_on_person",
]

_CHECK_TAIL = 2000  # of a failing check's words, in the feedback
_CLOSING = "closing"  # ``PullFollower.tried``'s head for a cancelled task's pull request


@dataclass(frozen=True)
class Feedback:
    """What a feedback round answers: ``text`` for the build's prompt, ``reasons`` in short,
    and what it answers (review and comment ids, heads whose failing checks it answers)."""

    text: str
    reasons: str
    answered: list[int]
    heads: list[str]


log = logging.getLogger(__name__)


def open_pull_of_cancelled(state: TaskState) -> int | None:
    """The number of the pull request a cancelled task left open (or whose close was begun
    and not recorded done), as recorded; else None."""
    pull = state.metadata.get(PULL)
    if state.status != TaskStatus.CANCELLED or not isinstance(pull, dict):
        return None
    number = pull.get("number")
    recorded = pull.get("state")
    return number if isinstance(number, int) and recorded in (None, "open", _CLOSING) else None


async def close_cancelled_pull(forge: Forge, store: StateStore, state: TaskState) -> int | None:
    """Close the open pull request of the cancelled task ``state`` with a comment saying why
    (its branch stays), and record it closed: its number, or None when it had none open or
    another process took the close (``council cancel`` and a running follower, or two
    workstations: the one whose compare-and-set of ``closing`` wins comments and closes; one
    found ``closing``, left so by a crash, is closed again). ``CouncilError`` when the forge
    refused or did not answer (recorded open again, so the next look tries again). Every
    cancel comes here: ``council cancel`` at once, the follower of a running or resumed run
    for one cancelled any other way (``Council.cancel``, a cancel the forge missed)."""
    number = open_pull_of_cancelled(state)
    if number is None:
        return None
    if state.metadata[PULL].get("state") != _CLOSING:
        taken = await _record_pull_state(store, state, number, _CLOSING, only_from_open=True)
        if taken is None:
            return None
        state = taken
    pull = state.metadata[PULL]
    try:
        await forge.comment(
            number,
            own(
                f"Task `{state.task_id}` was cancelled in CLI Council, so this pull request is "
                f"closed; its branch `{pull.get('head') or '-'}` stays."
            ),
        )
        await forge.close(number)
    except CouncilError:
        await _record_pull_state(store, state, number, "open")
        raise
    await _record_pull_state(store, state, number, "closed")
    return number


async def _record_pull_state(
    store: StateStore, state: TaskState, number: int, recorded: str, *, only_from_open: bool = False
) -> TaskState | None:
    """Record the task's pull request ``number`` as ``recorded``, compare-and-set, read again
    after any other write; the task as written, or None when it no longer records that pull
    request (``only_from_open``: or no longer records it open)."""
    while True:
        pull = state.metadata.get(PULL)
        if not isinstance(pull, dict) or pull.get("number") != number:
            return None
        if only_from_open and pull.get("state") not in (None, "open"):
            return None
        waiting = "cancelled" if recorded == "closed" else str(pull.get("waiting", ""))
        meta = {**state.metadata, PULL: {**pull, "state": recorded, "waiting": waiting}}
        try:
            return await store.update_task_state(
                state.task_id, {"metadata": meta}, expected_version=state.version
            )
        except VersionConflict:
            again = await store.get_task_state(state.task_id)
            if again is None:
                return None
            state = again


class _MidReview:
    """``_feedback``'s answer for a review read half-submitted: look again."""


_MID_REVIEW = _MidReview()


def pull_remote(services: Services) -> str:
    """Where the run's pull request heads are pushed: the team's remote, else ``origin``."""
    return services.team.remote if services.team is not None else PULL_REMOTE


async def resolve_round(
    services: Services, state: TaskState, seen: dict[str, Any], round_: int, why: str
) -> TaskState:
    """Send the task whose pull request ``seen`` (as recorded: its number, its ``head``)
    is open back to the queue for resolve round ``round_``, as a merge-queue conflict's
    (``Lander``): its next attempt forks a fresh worktree from the base as the remote has it
    now (fetched first), builds again, and its landing pushes to the same head, so the same
    pull request. ``why`` is the task's error meanwhile. Compare-and-set on the version of
    ``state`` (``VersionConflict``: read again); the task as written. Written by the
    follower when council's merge met a conflict, and by ``scheduler.retry.request_rebase``
    when a person asks for it."""
    await services.merges.lending.follow_pull_base(pull_remote(services))
    meta = {**state.metadata, RESOLVE_ROUNDS: round_, "conflicts": []}
    meta.pop(WORKTREE, None)
    meta[PULL] = {**seen, "round": int(seen.get("round", 0)) + 1, "waiting": "", "human": False}
    updates: dict[str, Any] = {
        "status": TaskStatus.QUEUED,
        "current_phase": None,
        "finished_at": None,
        "error": why,
        "metadata": meta,
    }
    written = await services.store.update_task_state(
        state.task_id, updates, expected_version=state.version
    )
    head = str(seen.get("head") or "")
    await services.store.emit(
        MergeResolveRound(task_id=state.task_id, paths=[], kept_branch=head, round=round_)
    )
    return written


def waits_on_person(state: TaskState) -> bool:
    """An ``in_review`` task nothing in this run can move: its pull request waits for a
    person (a review, a merge by hand, failing checks)."""
    pull = state.metadata.get(PULL)
    return (
        state.status == TaskStatus.IN_REVIEW
        and isinstance(pull, dict)
        and pull.get("human") is True
    )


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

    def unlooked(self, state: TaskState) -> bool:
        """An in-review task whose pull request, as last pushed, no pass has tried yet; or a
        cancelled task whose pull request is recorded open and no pass of this run has tried
        to close (the run does not end before it tried: ``Scheduler._settled``)."""
        run = self._run
        if run.services.forge is None or run.services.config.landing.via != "pull_request":
            return False
        if open_pull_of_cancelled(state) is not None:
            return (state.task_id, _CLOSING) not in self.tried
        pull = state.metadata.get(PULL)
        return (
            state.status == TaskStatus.IN_REVIEW
            and isinstance(pull, dict)
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

    def _forge_of(self) -> Forge:
        forge = self._run.services.forge
        assert forge is not None  # followed only when the run has one
        return forge

    @property
    def _remote(self) -> str:
        return pull_remote(self._run.services)

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
                    self.tried.add((state.task_id, _CLOSING))
                continue
            if state.status != TaskStatus.IN_REVIEW:
                continue
            pull = state.metadata.get(PULL)
            if not isinstance(pull, dict) or not isinstance(pull.get("number"), int):
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
            return await self._note(state, seen, why, human=True)
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
        # merged, closed or pushed to meanwhile, and ``_not_merged`` reads it then (one
        # request a task saved on the happy path).
        pr, read = _as_recorded(pull, self._run.services.config.base_branch), False
        approved, reviewed = gate(pr.head_sha)
        if not (reviewed and landing.merge == "auto"):
            pr, read = await forge.get_pull(number), True
            if pr.merged:
                return await self._merged(state, pull, pr, None)
            if pr.state == "closed":
                return await self._closed(state, pull, pr)
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
            if landing.merge == "manual":
                return await self._note(state, seen, f"a person to merge #{number}", human=True)
            # A merge the forge refused is asked again only once what council sees changed
            # (the head, a review, the checks): a person is on it meanwhile.
            seen["gate"] = f"{pr.head_sha}:{sorted(r.id for r in latest.values())}:{checks}"
            if pull.get("refused") == seen["gate"]:
                if not read:  # a person may have merged or closed it by hand meanwhile
                    again = await forge.get_pull(number)
                    if again.merged:
                        return await self._merged(state, seen, again, None)
                    if again.state == "closed":
                        return await self._closed(state, seen, again)
                return await self._note(state, seen, str(pull.get("waiting", "")), human=True)
            outcome = await forge.merge_pull(
                number, method=landing.merge_method, expected_sha=pr.head_sha
            )
            crash_point("pull.merged")
            if outcome.kind == "merged":
                return await self._merged(state, seen, pr, outcome.sha)
            return await self._not_merged(state, seen, pr, outcome.kind, outcome.message)
        if not read:  # reviewed, but its checks are not all green: what is the head now?
            pr = await forge.get_pull(number)
            if pr.merged:
                return await self._merged(state, pull, pr, None)
            if pr.state == "closed":
                return await self._closed(state, pull, pr)
            if found is not None and pr.head_sha != found.sha:  # pushed to meanwhile
                found = await forge.checks(pr.head_sha)
                checks = found.state
            seen.update(state=pr.state, head_sha=pr.head_sha, checks=checks)
            if checks == "success":
                return await self._note(state, seen, f"#{number}: a new head", human=False)
            approved, reviewed = gate(pr.head_sha)
            seen["approvals"] = approved
        feedback = await self._feedback(forge, pr, latest, found, seen, {r.id for r in reviews})
        seen["reviews_seen"] = sorted(r.id for r in reviews)
        if isinstance(feedback, _MidReview):
            # A review being submitted while we read (its comments listed, not yet itself):
            # answered whole on the next look, in one round, not as two.
            return await self._note(state, seen, f"#{number}: a review coming in", human=False)
        if feedback is not None:
            return await self._feedback_round(state, seen, pr, feedback)
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
        return await self._note(state, seen, f"#{number}: {why}", human=human)

    async def _feedback(
        self,
        forge: Forge,
        pr: PullRequest,
        latest: Mapping[str, Review],
        checks: Checks | None,
        seen: dict[str, Any],
        reviewed: set[int],
    ) -> Feedback | _MidReview | None:
        """What reviewers and checks said that no round answered yet (``answered``: the
        ids of the reviews and comments answered, and the heads whose failing checks were),
        when a round is left (``landing.max_review_rounds``); None otherwise. ``_MID_REVIEW``
        when a comment belongs to a review not among ``reviewed`` (the reviews read just
        before): the two lists were read while a review was being submitted."""
        rounds = int(seen.get("feedback_rounds", 0))
        if rounds >= self._run.services.config.landing.max_review_rounds:
            return None
        answered = set(seen.get("answered") or [])
        lines: list[str] = []
        reasons: list[str] = []
        ids: list[int] = []
        for name, review in latest.items():
            if review.state == "CHANGES_REQUESTED" and review.id not in answered:
                ids.append(review.id)
                reasons.append(f"changes asked for by {name}")
                lines.append(f"Review by {name}, asking for changes:\n{review.body.strip()}")
        # A review comment always belongs to a review: with no review new since the last
        # look, there is no new comment to read (a request each look saved while it waits).
        comments: list[ReviewComment] = []
        if reviewed - set(seen.get("reviews_seen") or []):
            listed = await forge.list_review_comments(pr.number)
            comments = [c for c in listed if c.id not in answered]
        if any(c.review_id is not None and c.review_id not in reviewed for c in comments):
            return _MID_REVIEW
        # Only trusted people's comments reach the prompt; the others' are not even counted
        # as answered (a later trust rule does not make them new).
        comments = list((await self._trust_of(forge).hear((), comments)).comments)
        if comments:
            reasons.append(f"{len(comments)} review comment(s)")
            lines.append("Review comments:")
            for comment in comments:
                ids.append(comment.id)
                where = f"{comment.path}:{comment.line}" if comment.line else comment.path
                lines.append(f"- {where} ({comment.reviewer}): {comment.body.strip()}")
        heads = set(seen.get("answered_heads") or [])
        failing = checks.failing if checks is not None and pr.head_sha not in heads else ()
        if failing:
            reasons.append(f"failing checks: {', '.join(c.name for c in failing)}")
            for check in failing:
                said = "\n".join(x for x in (check.summary, check.text_tail) if x.strip())
                lines.append(f"Check {check.name!r} failed:\n{said[-_CHECK_TAIL:]}".rstrip())
        if not reasons:
            return None
        return Feedback(
            text="\n\n".join(lines),
            reasons="; ".join(reasons),
            answered=sorted(answered | set(ids)),
            heads=sorted(heads | ({pr.head_sha} if failing else set())),
        )

    async def _feedback_round(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, feedback: Feedback
    ) -> bool:
        """Back to the queue for a build on the task's own branch that answers ``feedback``
        (its phases from build on set to run again, their CLI conversation resumed), pushed
        to the same pull request."""
        rounds = int(seen.get("feedback_rounds", 0)) + 1
        task = self._run.tasks[state.task_id]
        names = [phase.name for phase in self._run.services.config.phases_for(task)]
        again = names[names.index(BUILD) :] if BUILD in names else names[-1:]
        phases = {
            name: record.model_copy(
                update={
                    "status": PhaseStatus.PENDING,
                    "outcome": FEEDBACK_OUTCOME,
                    "result": {"branch": record.result.get("branch")},
                    "finished_at": None,
                    "error": None,
                }
            ).model_dump()
            for name, record in state.phases.items()
            if name in again
        }
        meta = {**state.metadata, PULL_FEEDBACK: feedback.text}
        meta[WORKTREE] = derived_id(state.task_id, secrets.token_hex(3), limit=59)
        meta[PULL] = {
            **seen,
            "round": int(seen.get("round", 0)) + 1,
            "feedback_rounds": rounds,
            "answered": feedback.answered,
            "answered_heads": feedback.heads,
            "waiting": "",
            "human": False,
        }
        updates: dict[str, Any] = {
            "status": TaskStatus.QUEUED,
            "current_phase": None,
            "error": None,
            "phases": {**{k: v.model_dump() for k, v in state.phases.items()}, **phases},
            "metadata": meta,
        }
        await self._write(state, updates)
        await self._run.events.emit(
            PullFeedbackRound(
                task_id=state.task_id,
                number=pr.number,
                url=pr.url,
                round=rounds,
                reasons=feedback.reasons,
            )
        )
        return True

    async def _note(self, state: TaskState, seen: dict[str, Any], why: str, *, human: bool) -> bool:
        """Record what the pull request waits for, when that changed."""
        seen = {**seen, "waiting": why, "human": human}
        if state.metadata.get(PULL) == seen:
            return False
        await self._write(state, {"metadata": {**state.metadata, PULL: seen}})
        return True

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
            return await self._note(state, {**pull, "looked": True}, why, human=person)
        except VersionConflict:
            return True

    async def _merged(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, commit: str | None
    ) -> bool:
        """Merged on the forge: done once the work is on the remote's base."""
        merges = self._run.services.merges
        by_council = commit is not None
        merged_commit = commit or pr.head_sha
        landed = await merges.lending.confirm_pull_landed(self._remote, merged_commit)
        if not landed.contained and not by_council and landed.base is not None:
            # A person's squash or rebase: the head's commits are not on the base as they
            # are; the forge's word that it merged is all there is, and the base's tip seen
            # after it is the landing.
            merged_commit = landed.base
            landed = await merges.lending.confirm_pull_landed(self._remote, merged_commit)
        if not landed.contained:
            why = f"#{pr.number} merged; its work not seen on the remote's base yet"
            return await self._note(state, seen, why, human=False)
        final = {**seen, "state": "merged", "waiting": "", "human": False}
        updates: dict[str, Any] = {
            "status": TaskStatus.DONE,
            "merged_commit": merged_commit,
            "finished_at": utcnow(),
            "error": None,
            "metadata": {**state.metadata, PULL: final},
        }
        await self._write(state, updates)
        await self._run.events.emit(
            PullMerged(
                task_id=state.task_id,
                number=pr.number,
                url=pr.url,
                commit=merged_commit,
                by_council=by_council,
            )
        )
        if landed.behind:
            log.info("task %s landed by #%s; %s", state.task_id, pr.number, landed.behind)
        return True

    async def _closed(self, state: TaskState, seen: dict[str, Any], pr: PullRequest) -> bool:
        error = (
            f"pull request #{pr.number} was closed without merging (closed by a human): {pr.url}"
        )
        final = {**seen, "state": "closed", "waiting": "", "human": False}
        updates: dict[str, Any] = {
            "status": TaskStatus.FAILED,
            "finished_at": utcnow(),
            "error": error,
            "metadata": {**state.metadata, PULL: final, "outcome": "pull_closed"},
        }
        await self._write(state, updates)
        await self._run.events.emit(PullClosed(task_id=state.task_id, number=pr.number, url=pr.url))
        await self._run.events.emit(TaskFailed(task_id=state.task_id, error=error))
        return True

    async def _not_merged(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, kind: str, message: str
    ) -> bool:
        """Council's merge was refused. The head moved meanwhile: looked at again next pass
        (the new head needs its own checks). A conflict with the moved base: a resolve round
        (built again on the remote's base, pushed to the same pull request), once; then, or
        for a protection rule the gate did not foresee, it waits on a person."""
        again = await self._forge_of().get_pull(pr.number)
        if again.merged:  # merged meanwhile (by a person, or another workstation's follower)
            return await self._merged(state, seen, again, None)
        if again.state == "closed":  # closed by a person while its merge was asked
            return await self._closed(state, seen, again)
        await self._run.events.emit(
            PullNotMerged(
                task_id=state.task_id, number=pr.number, url=pr.url, kind=kind, message=message
            )
        )
        seen = {**seen, "head_sha": again.head_sha}
        if kind == "head_changed":
            why = (
                f"#{pr.number}: its head moved while council merged it; looking again (the new "
                "head needs its own approval)"
            )
            return await self._note(state, seen, why, human=False)
        rounds = int(state.metadata.get(RESOLVE_ROUNDS, 0))
        conflict = again.mergeable is False
        if conflict and rounds < MAX_RESOLVE_ROUNDS:
            return await self._resolve_round(state, seen, again, rounds + 1)
        if conflict:
            error = (
                f"pull request #{pr.number} conflicts with {again.base} after its resolve round "
                f"({message}); it stays open with branch {again.head}: {again.url}"
            )
            final = {**seen, "waiting": "", "human": False}
            updates: dict[str, Any] = {
                "status": TaskStatus.CONFLICT,
                "finished_at": utcnow(),
                "error": error,
                "metadata": {**state.metadata, PULL: final},
            }
            await self._write(state, updates)
            return True
        refused = {**seen, "refused": seen.get("gate")}
        return await self._note(
            state, refused, f"#{pr.number}: not mergeable: {message}", human=True
        )

    async def _resolve_round(
        self, state: TaskState, seen: dict[str, Any], pr: PullRequest, round_: int
    ) -> bool:
        """Back to the queue, as a merge-queue conflict's resolve round (``resolve_round``)."""
        why = f"pull request #{pr.number} conflicts with {pr.base}: building again on it"
        await resolve_round(self._run.services, state, {**seen, "head": pr.head}, round_, why)
        return True

    async def _write(self, state: TaskState, updates: dict[str, Any]) -> None:
        """Compare-and-set on the version the pass read (``VersionConflict``: read again)."""
        await self._run.services.store.update_task_state(
            state.task_id, updates, expected_version=state.version
        )
