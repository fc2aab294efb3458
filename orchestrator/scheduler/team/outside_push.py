"""Whether an attempt's own commits reached the team's base outside the merge queue: its CLI
pushed them (``git push origin HEAD:main``), skipping every check a landing makes (review, the
secret gate, the queue's merge).

``pushed_outside(run, attempt, tip)`` asks the merge queue (``MergeQueue.outside_work``: the
commits it saw land on the base that no queue landed, and that are in ``tip`` but not in the
base the attempt forked from) and, when there are any, says why the task fails, naming them.
It is asked where a task would otherwise end ``done`` (``lander``: its landing) or ``failed``
for a build that changed nothing (``failures``: after the push, the base already holds the
work). Remote mode only; no git process unless the base moved outside the queue. The commits
stay on the base: nothing here rewrites a shared branch.
"""

from __future__ import annotations

import logging

from orchestrator.errors import CouncilError
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.context import RunContext

__all__ = ["pushed_outside"]

log = logging.getLogger(__name__)


async def pushed_outside(
    run: RunContext, attempt: Attempt, tip: str, *, fetch: bool = False
) -> str | None:
    """Why the task fails for commits of ``tip`` (its branch's tip, a commit or a ref) that
    reached the base outside the queue; None when none did (or not in remote mode).
    ``fetch``: read the remote's base first (a landing just did; a build that changed nothing
    did not, and the CLI's own push moved this clone's tracking ref without a fetch)."""
    merges = run.services.merges
    if attempt.relanding or merges.remote is None or attempt.session is None:
        return None
    if fetch:
        try:
            await merges.refresh()
        except CouncilError as exc:  # unreachable now: judged on the base as last fetched
            log.warning("cannot fetch the team's base: %s", exc)
    found = await merges.outside_work(tip, attempt.session.base_commit)
    if not found:
        return None
    named = "; ".join(f"{sha[:10]} {subject!r}" for sha, subject in found[:5])
    where = f"{merges.remote}/{merges.base_branch}"
    return (
        f"its work reached {where} outside the merge queue: {named} pushed straight onto it "
        f"(no review, no secret check, no landing of the queue's); left there for a human to "
        f"review, branch {attempt.session.branch} kept"
    )
