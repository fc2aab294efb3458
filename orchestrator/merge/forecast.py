"""Conflict forecasts between branches, for the merge queue (``MergeQueue.forecast_*``).

A forecast is computed at the two branches' merge base by ``git merge-tree``: no ref, index or
file changes (only unreferenced objects are written). A branch whose tip is still the commit
it was made from (read from git's files, no process) brings nothing, so it cannot conflict and
no ``merge-tree`` runs. Blocking: each call runs in a worker thread.
"""

from __future__ import annotations

from collections.abc import Sequence

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.merge_tree import GitCalls, branch_ref, merge_trees, missing_branch
from orchestrator.git.ref_files import read_refs
from orchestrator.merge.checkout import CheckoutFinder
from orchestrator.merge.types import ConflictForecast

__all__ = ["Forecasts"]


class Forecasts:
    """Forecasts in one repository (its common git directory found by ``checkouts``)."""

    def __init__(self, checkouts: CheckoutFinder) -> None:
        self._checkouts = checkouts

    def one(
        self, calls: GitCalls, branch_a: str, branch_b: str, a_forked_at: str | None
    ) -> ConflictForecast:
        """One forecast (blocking, in a worker thread)."""
        refs = (branch_ref(branch_a), branch_ref(branch_b))
        if a_forked_at is not None:
            tips = read_refs(self._checkouts.common_dir(calls), [refs[0]])
            if tips is not None and tips.get(refs[0]) == a_forked_at:
                return ConflictForecast(branch_a, branch_b, False)
        try:
            merged = merge_trees(calls, *refs)
        except GitError:
            for ref in refs:
                if calls.rev_parse(ref) is None:
                    raise missing_branch(calls, ref, "branch") from None
            raise
        return ConflictForecast(
            branch_a, branch_b, not merged.clean, merged.conflicts, merged.messages
        )

    def many(
        self, calls: GitCalls, pairs: Sequence[tuple[str, str, str | None]]
    ) -> list[ConflictForecast | WorkspaceError]:
        """``one`` of each pair, in order (blocking); a pair git cannot answer gets its error
        in its place, the others their forecast."""
        found: list[ConflictForecast | WorkspaceError] = []
        for branch_a, branch_b, a_forked_at in pairs:
            try:
                found.append(self.one(calls, branch_a, branch_b, a_forked_at))
            except WorkspaceError as exc:
                found.append(exc)
        return found
