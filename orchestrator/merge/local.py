"""The local base of record: one attempt at a train of the merge queue moving this
repository's base branch, its own ref or through the checkout that has it.

``LocalBase.attempt`` builds the train's merge commits (``merge.cars``), then looks for the
lock files of git's the update needs (``merge.git_locks``: a present one is ``Locked``, for the
queue to wait on or name in ``BaseLocked``), and moves the base once: a compare-and-swap of
its ref (``update-ref <base> <new> <old>``), or, where the base is checked out, the clean
checkout's fast-forward (``merge.checkout``; a blocked checkout makes the merge wait, a train
that would be in its way is ``Split`` to land one by one). A base another writer moved is a
``Retry``. The remote's counterpart is ``merge.remote.RemoteBase``; the queue
(``merge.queue``) runs the attempts, their retries and backoff, and says what happened.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import GitError
from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls
from orchestrator.merge.attempt import Request, Retry
from orchestrator.merge.cars import Cars, Outcome, Split
from orchestrator.merge.checkout import (
    Blocked,
    Checkout,
    CheckoutFinder,
    fast_forward,
    inspect_checkout,
    refusal_cause,
)
from orchestrator.merge.git_locks import GitLockFile, held_git_locks
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.safety.crashpoints import crash_point

__all__ = ["LocalBase", "Locked"]


@dataclass(frozen=True)
class Locked:
    """Git lock files the update needs are present; nothing was written."""

    locks: list[GitLockFile]


class LocalBase:
    """The base branch of record in this repository, for one ``MergeQueue``."""

    def __init__(
        self,
        repo_path: Path,
        base_ref: str,
        base_branch: str,
        history: TaskIndex,
        checkouts: CheckoutFinder,
        gate: SecretGate,
    ) -> None:
        self.repo_path = repo_path
        self.base_ref = base_ref
        self.base_branch = base_branch
        self._history = history
        self._checkouts = checkouts
        self._gate = gate

    def attempt(
        self, calls: GitCalls, requests: list[Request], failed: dict[str, Exception]
    ) -> list[Outcome] | Retry | Locked | Split:
        """One attempt at the whole train (``merge.cars``), then one update of the base (via
        its checkout, if any)."""
        common = self._checkouts.common_dir(calls)
        built = Cars(
            calls,
            self.base_ref,
            self.base_branch,
            self._history,
            self._gate,
            common,
            read_common=common,
            failed=failed,
        )
        for request in requests:
            built.add(request)
        if not built.cars:
            return built.outcomes()
        return self._land(calls, built)

    def _land(self, calls: GitCalls, built: Cars) -> list[Outcome] | Retry | Locked | Split:
        """Move the base to the train's last merge commit (via its checkout, if any)."""
        base = built.base
        owners = self._checkouts.owners(calls)
        if len(owners) > 1:
            return built.waiting(
                f"base branch {self.base_branch!r} is checked out in {len(owners)} worktrees; "
                "check it out in one at most",
                [str(o.path) for o in owners],
            )
        checkout = owners[0] if owners else None
        locked = self._git_locks(calls, checkout)
        if locked is not None:
            return locked
        clean = True
        if checkout is not None:
            common = self._checkouts.common_dir(calls)
            state = inspect_checkout(calls, checkout, self.base_branch, built.tree, base, common)
            if isinstance(state, Blocked):
                if len(built.cars) > 1:
                    return Split()
                return built.waiting(state.message, state.details, checkout.path)
            clean = not state.cut_short
        new = built.tip
        crash_point("merge.committed")
        if checkout is None:
            retry = self._compare_and_swap(calls, base, new, built.reason())
            if retry is not None:
                return retry
        else:
            if not self._checkouts.still_holds(checkout):
                return Retry()  # the user switched branches there: look for the owner again
            refusal = fast_forward(calls, checkout, self.base_ref, base, new, clean=clean)
            if refusal is None and not self._checkouts.still_holds(checkout):
                # Switched away in the instant before the fast-forward: what moved was not the
                # base, so start over and look again.
                return Retry()
            if refusal is not None:
                if calls.rev_parse(self.base_ref) != base:
                    return Retry()
                # A lock that appeared after the look above: name it, not git's words.
                locked = self._git_locks(calls, checkout)
                if locked is not None:
                    return locked
                if len(built.cars) > 1:
                    return Split()
                return built.waiting(
                    f"git refused to fast-forward {checkout.path} (base branch "
                    f"{self.base_branch!r} is checked out there): {refusal_cause(refusal)}; "
                    "the task lands by itself once that is cleared",
                    refusal.splitlines()[:20],
                    checkout.path,
                )
        crash_point("merge.ref_updated")
        built.record(self._history)
        return built.outcomes(checkout=checkout.path if checkout else None)

    def _git_locks(self, calls: GitCalls, checkout: Checkout | None) -> Locked | None:
        """The git lock files the update needs that are present, if any (see the module doc)."""
        common = self._checkouts.common_dir(calls)
        places = [common, self.repo_path, *([checkout.path] if checkout else [])]
        admin = checkout.admin if checkout else None
        found = held_git_locks(common, self.base_ref, admin, places)
        return Locked(found) if found else None

    def _compare_and_swap(self, calls: GitCalls, old: str, new: str, reason: str) -> Retry | None:
        """Move the base from ``old`` to ``new``: None when done, a ``Retry`` when the base
        moved or its ref is locked by another writer."""
        with ref_book.writing():  # noted with the write, for the tamper check
            update = calls.run("update-ref", "-m", reason, self.base_ref, new, old, check=False)
            if update.ok:
                ref_book.note(self.base_ref, old, new)
        if update.ok:
            return None
        if calls.rev_parse(self.base_ref) != old:
            return Retry()
        if "File exists" in update.stderr:
            # Another writer holds the ref's lock right now (or a crash left it behind: the
            # error after the last attempt names the file).
            return Retry(update.stderr.strip())
        raise GitError(["update-ref", self.base_ref, new, old], update.returncode, update.stderr)
