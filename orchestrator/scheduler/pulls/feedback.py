"""A pull request's feedback round: what trusted reviewers and checks said that no round
answered yet, sent back to the task as a build on its own branch (``FeedbackRounds``).

``unanswered`` gathers it, while a round is left (``landing.max_review_rounds``): each trusted
reviewer's latest review asking for changes, the review comments of trusted people (listed only
when a review not seen before is, a comment always belonging to a review) and the failing
checks of a head not answered yet (the tail of their words). A comment of a review not among
the reviews just read means one was being submitted meanwhile: ``MID_REVIEW``, look again.
``send_back`` queues the task again: its phases from build on to run again, their CLI
conversation resumed, with the feedback in the build's prompt (``workflow.feedback_prompt``),
pushed to the same pull request; ``pull.feedback_round``. What it answered (review and comment
ids, heads) is recorded so no round answers it twice.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from orchestrator.events.pulls import PullFeedbackRound
from orchestrator.forge.base import Checks, Forge, PullRequest, Review, ReviewComment
from orchestrator.forge.trust import Trust
from orchestrator.ids import derived_id
from orchestrator.models import PhaseStatus, TaskState, TaskStatus
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.pulls.outcomes import write
from orchestrator.task_meta import PullState, TaskMeta
from orchestrator.workflow.progress import BUILD
from orchestrator.workflow.resume import FEEDBACK_OUTCOME

__all__ = ["MID_REVIEW", "Feedback", "FeedbackRounds", "MidReview"]

_CHECK_TAIL = 2000  # of a failing check's words, in the feedback


@dataclass(frozen=True)
class Feedback:
    """What a feedback round answers: ``text`` for the build's prompt, ``reasons`` in short,
    and what it answers (review and comment ids, heads whose failing checks it answers)."""

    text: str
    reasons: str
    answered: list[int]
    heads: list[str]


class MidReview:
    """``FeedbackRounds.unanswered``'s answer for a review read half-submitted: look again."""


MID_REVIEW = MidReview()


class FeedbackRounds:
    """The feedback rounds of the run ``run`` (module doc); ``trust_of`` gives who is trusted
    on a forge (``forge.trusted``), its answers kept for the run."""

    def __init__(self, run: RunContext, trust_of: Callable[[Forge], Trust]) -> None:
        self._run = run
        self._trust_of = trust_of

    async def unanswered(
        self,
        forge: Forge,
        pr: PullRequest,
        latest: Mapping[str, Review],
        checks: Checks | None,
        seen: dict[str, Any],
        reviewed: set[int],
    ) -> Feedback | MidReview | None:
        """What reviewers and checks said that no round answered yet (``answered``: the
        ids of the reviews and comments answered, and the heads whose failing checks were),
        when a round is left (``landing.max_review_rounds``); None otherwise. ``MID_REVIEW``
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
            return MID_REVIEW
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

    async def send_back(
        self,
        state: TaskState,
        seen: dict[str, Any],
        pr: PullRequest,
        feedback: Feedback,
        *,
        counted: bool = True,
        also: Callable[[TaskMeta], None] | None = None,
    ) -> bool:
        """Back to the queue for a build on the task's own branch that answers ``feedback``
        (its phases from build on set to run again, their CLI conversation resumed), pushed
        to the same pull request. ``counted``: a round of ``landing.max_review_rounds`` (a
        stacked pull request rebuilt on a change below it is not); ``also``: more of the
        record changed in the same write."""
        rounds = int(seen.get("feedback_rounds", 0)) + (1 if counted else 0)
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
        typed = TaskMeta.read(state.metadata)
        typed.pull.pull_feedback = feedback.text
        typed.worktree.session = derived_id(state.task_id, secrets.token_hex(3), limit=59)
        typed.pull.pull = PullState.model_validate({
            **seen,
            "round": int(seen.get("round", 0)) + 1,
            "feedback_rounds": rounds,
            "answered": feedback.answered,
            "answered_heads": feedback.heads,
            "waiting": "",
            "human": False,
        })  # fmt: skip
        if also is not None:
            also(typed)
        meta = typed.dump()
        updates: dict[str, Any] = {
            "status": TaskStatus.QUEUED,
            "current_phase": None,
            "error": None,
            "phases": {**{k: v.model_dump() for k, v in state.phases.items()}, **phases},
            "metadata": meta,
        }
        await write(self._run, state, updates)
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
