"""After a landing on the shared remote: bring this clone's own base branch along, when safe.

The remote's branch is the base of record; the clone's ``refs/heads/<base>`` is the user's.
It follows the landed commit only when nothing of the user's can be lost or disturbed:

- not checked out anywhere: a compare-and-swap ``update-ref``, and only if the local base is an
  ancestor of the landed commit (a local base with commits of its own is left alone);
- checked out in one clean checkout: the fast-forward the local queue uses
  (``merge.checkout.fast_forward``: ref, index and files together, put back if git stops
  half-way);
- otherwise (uncommitted changes, a rebase or merge in progress, several checkouts, a
  refusal) it is left where it is and ``Followed.behind`` says why.

The landing itself already succeeded, so nothing here fails a merge or waits for the user.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.checkout import Blocked, CheckoutFinder, fast_forward, inspect_checkout

__all__ = ["Followed", "follow_landing"]


@dataclass(frozen=True)
class Followed:
    """``behind``: why the local base did not follow ("" when it did, or does not exist);
    ``checkout``: the checkout fast-forwarded, if one was."""

    behind: str = ""
    checkout: Path | None = None


def follow_landing(
    calls: GitCalls, checkouts: CheckoutFinder, base_branch: str, new: str, tree: str
) -> Followed:
    """Move the local base to ``new`` (whose tree is ``tree``) if that is safe; see above."""
    ref = checkouts.base_ref
    local = calls.rev_parse(ref)
    if local is None or local == new:
        return Followed()
    left = f"local {base_branch!r} left at {local[:12]}"
    if not calls.is_ancestor(local, new):
        return Followed(f"{left}: it has commits of its own that the remote's does not")
    owners = checkouts.owners(calls)
    if len(owners) > 1:
        return Followed(f"{left}: it is checked out in {len(owners)} worktrees")
    if not owners:
        with ref_book.writing():  # noted with the write, for the tamper check
            reason = f"council: follow the landing on the remote ({new[:12]})"
            moved = calls.run("update-ref", "-m", reason, ref, new, local, check=False).ok
            if moved:
                ref_book.note(ref, local, new)
        return Followed() if moved else Followed(f"{left}: it moved meanwhile")
    checkout = owners[0]
    common = checkouts.common_dir(calls)
    state = inspect_checkout(calls, checkout, base_branch, tree, local, common)
    if isinstance(state, Blocked):
        return Followed(f"{left}: {state.message}")
    if not checkouts.still_holds(checkout):
        return Followed(f"{left}: the checkout in {checkout.path} switched branches")
    refusal = fast_forward(calls, checkout, ref, local, new, clean=not state.cut_short)
    if refusal is not None:
        first = refusal.splitlines()[0] if refusal else "refused"
        return Followed(f"{left}: git refused to fast-forward {checkout.path} ({first})")
    return Followed(checkout=checkout.path)
