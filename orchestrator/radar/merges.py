"""What a merge of two sessions' tips conflicts on, for the radar (``TipMerges``): ``git
merge-tree --write-tree`` asked once per pair of tips (the answers cached by tips, so a session
whose uncommitted diff moved but not its tip costs no merge), in a worker thread; a tip of
another workstation this clone does not have fetched first from its published branch (objects
only: no ref, no ``FETCH_HEAD`` written here; once per tip)."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Protocol

import anyio.to_thread

from orchestrator.errors import GitError, WorkspaceError
from orchestrator.git.merge_tree import GitCalls, branch_ref, merge_trees
from orchestrator.git.publish import BRANCHES_PREFIX
from orchestrator.git.remote_refs import check_remote_name
from orchestrator.radar.records import Sighting

__all__ = ["MERGE_CACHE", "Counted", "TipMerges"]

log = logging.getLogger(__name__)

MERGE_CACHE = 4096  # merge-tree results kept, by pair of tips


class Counted(Protocol):
    """Where the merges asked for are counted (``engine.PassCost``)."""

    merges: int


@dataclass
class TipMerges:
    """The merges of pairs of tips asked for, cached; ``remote``: a team's, where the other
    workstations' published branches are; ``workstation``: this one's id (None alone)."""

    remote: str | None = None
    workstation: str | None = None
    _merges: dict[tuple[str, str], list[str] | None] = field(default_factory=dict)
    _fetched: set[str] = field(default_factory=set)  # other workstations' tips asked for

    def clear(self) -> None:
        """Forget every answer (the bench's non-incremental pass asks again)."""
        self._merges.clear()

    async def conflicts(
        self, calls: GitCalls, cost: Counted, mine: Sighting, other: Sighting
    ) -> list[str] | None:
        """The paths a merge of the two tips conflicts on ([] clean); None when git cannot
        tell (asked again next time: the tip may have been fetched meanwhile)."""
        tip_a, tip_b = mine.tip, other.tip
        pair = (min(tip_a, tip_b), max(tip_a, tip_b))
        if pair in self._merges:
            return self._merges[pair]
        cost.merges += 1
        fetch = [s for s in (mine, other) if self._fetchable(s)]

        def merge() -> list[str] | None:
            for _ in range(2):
                try:
                    return merge_trees(calls, pair[0], pair[1]).conflicts
                except GitError as exc:
                    log.info("radar: no merge-tree of %s and %s: %s", pair[0], pair[1], exc)
                if not fetch:
                    return None
                for sighting in fetch:
                    self._fetch(calls, sighting)
                fetch.clear()
            return None

        found = await anyio.to_thread.run_sync(merge)
        if found is None:
            return None
        if len(self._merges) >= MERGE_CACHE:
            self._merges.clear()
        self._merges[pair] = found
        return found

    def _fetchable(self, sighting: Sighting) -> bool:
        return (
            self.remote is not None
            and sighting.branch is not None
            and sighting.workstation != self.workstation
            and sighting.tip not in self._fetched
        )

    def _fetch(self, calls: GitCalls, sighting: Sighting) -> None:
        """Bring ``sighting``'s tip into this clone from its published branch (blocking)."""
        assert self.remote is not None and sighting.branch is not None
        self._fetched.add(sighting.tip)
        if len(self._fetched) > MERGE_CACHE:
            self._fetched.clear()
        try:
            local = branch_ref(sighting.branch)  # a name from the store: checked first
            remote = check_remote_name(self.remote)
        except WorkspaceError as exc:
            log.info("radar: %s", exc)
            return
        published = BRANCHES_PREFIX + local.removeprefix("refs/heads/")
        args = ("fetch", "--quiet", "--no-tags", "--no-write-fetch-head", remote, published)
        done = calls.run(*args, check=False)
        if not done.ok:
            log.info("radar: %s of %s not fetched: %s", published, remote, done.stderr.strip())
