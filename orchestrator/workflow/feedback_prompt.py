"""The prompt of a pull request's feedback round (``landing.via: pull_request``): what the
reviewers asked, **last and whole**.

A CLI follows the latest instruction it reads: feedback put before the task's own text was
undone by the task's text after it (a CLI that follows its prompt literally wrote the file
back and the round pushed nothing). So:

- the conversation goes on (the CLI continues its native session, which knows the task):
  the prompt is the feedback alone (``continued``);
- a new session (the adapter cannot resume, or the CLI refused): the task's whole prompt,
  then the feedback after it (``whole``), marked as the latest word.

The feedback itself is built by the pull request follower from what trusted reviewers and
failing checks said (review bodies, inline comments with their file and line, checks'
summaries)."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["FeedbackPrompts", "feedback_prompts"]

_ASKED = (
    "Your work on this task is in a pull request, and its review asked for what follows. "
    "Change the files to answer it (your earlier commits are kept; add to them). If it asks "
    "for something already done, say so instead of changing anything.\n\n{feedback}\n"
)
_AFTER = "\n\n# Feedback on your pull request: this comes last and answers win\n\n"


@dataclass(frozen=True)
class FeedbackPrompts:
    whole: str  # for a new session: the task's prompt, then the feedback
    continued: str  # for the conversation that goes on: the feedback alone


def feedback_prompts(prompt: str, feedback: str) -> FeedbackPrompts:
    """The two prompts of a feedback round whose task prompt is ``prompt``."""
    asked = _ASKED.format(feedback=feedback.strip())
    return FeedbackPrompts(whole=prompt.rstrip() + _AFTER + asked, continued=asked)
