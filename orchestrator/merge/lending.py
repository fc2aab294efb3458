"""What the merge queue lends the features beside it: the pull requests' git (the branch's
check before it leaves, a head pushed, a merge on the remote confirmed, the base followed; a
stacked pull request's start and a change below carried up, ``stack_git``) and the
relander's (landings the base no longer has, their branches restored).

``Lending`` shares the queue's own parts, built once by it: its ``Git`` (one hooks directory,
one identity), its ``CheckoutFinder`` (which worktree has the base checked out), its
``SecretGate`` (the clean tips its landings found), its ``TaskIndex`` (the base's trailers) and
its ``RemoteBase``. ``MergeQueue.lending`` is the one instance; the queue itself only lands.
Every method runs its git in a worker thread.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.errors import CouncilError
from orchestrator.git import ref_book
from orchestrator.git.merge_tree import GitCalls, branch_ref, read_tips
from orchestrator.git.publish import fetch_branch
from orchestrator.git.repo import ZERO_SHA, Git
from orchestrator.merge.checkout import CheckoutFinder
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.pull_git import PullLanded, confirm_landed, push_head, refresh_base
from orchestrator.merge.push_gate import PushGate
from orchestrator.merge.remote import RemoteBase
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.merge.stack_git import (
    Carried,
    carry_up,
    have_commit,
    merge_heads,
    move_branch,
    unresolved,
)
from orchestrator.merge.vanished import VanishedLanding, find_vanished, kept_tip

__all__ = ["Lending"]

log = logging.getLogger(__name__)


class Lending:
    def __init__(
        self,
        git: Git,
        base_branch: str,
        checkouts: CheckoutFinder,
        gate: SecretGate,
        history: TaskIndex,
        remote: RemoteBase | None,
    ) -> None:
        self._git = git
        self._base_branch = base_branch
        self._base_ref = branch_ref(base_branch, "base branch")
        self._checkouts = checkouts
        self._gate = gate
        self._history = history
        self._remote = remote

    async def publishable(self, branch: str) -> str:
        """The tip of ``branch`` once the secret gate found nothing it brings over the base
        (``SecretInHistory`` otherwise, the work masked as for a landing): the check every
        branch passes before it leaves for a pull request (``landing.via: pull_request``)."""
        ref = branch_ref(branch)

        def gate() -> str:
            calls = GitCalls(self._git)
            common = self._checkouts.common_dir(calls)
            tips = read_tips(calls, self._base_ref, ref, common)
            self._gate.check(calls, branch, tips.branch, tips.base, common)
            return tips.branch  # the commit checked, never one the branch moved to since

        return await anyio.to_thread.run_sync(gate)

    def push_gate(self, remote: str, common: Path) -> PushGate:
        """The secret gate's check before a session's work is pushed to ``remote``
        (``merge.push_gate``), sharing the clean tips this queue's landings found."""
        bases = [f"refs/remotes/{remote}/{self._base_branch}", self._base_ref]
        return PushGate(self._gate, bases, common)

    async def push_pull_head(self, remote: str, commit: str, head: str) -> None:
        """Put ``commit`` on the remote's branch ``head``, a pull request's head
        (``pull_git.push_head``: leased, never forced)."""
        await anyio.to_thread.run_sync(push_head, GitCalls(self._git), remote, commit, head)

    async def stack_start(self, remote: str, below: Sequence[tuple[str, str]], message: str) -> str:
        """Where a task stacked on the pull requests ``below`` ((head branch, recorded head
        commit) each) starts: the one head, or a merge of them all made here
        (``stack_git``): exact commits, fetched when not in this clone."""

        def start() -> str:
            calls = GitCalls(self._git)
            for branch, sha in below:
                have_commit(calls, remote, branch, sha)
            if len(below) == 1:
                return below[0][1]
            return merge_heads(calls, [sha for _, sha in below], message)

        return await anyio.to_thread.run_sync(start)

    async def stack_carry(
        self,
        remote: str,
        kept: str,
        head: tuple[str, str],
        below: tuple[str, str],
        message: str,
    ) -> Carried:
        """The new head ``below`` ((branch, commit)) of the pull request below merged into
        the work above it, ``head`` ((branch, commit) as pushed); the task's ``kept`` local
        branch moved to the result (created when this clone has none), so its next build
        (the conflicts' resolution) starts there. A kept branch already at such a merge of
        the two (this carry, before a crash) is that result."""

        def carry() -> Carried:
            calls = GitCalls(self._git)
            have_commit(calls, remote, *head)
            have_commit(calls, remote, *below)
            local = calls.rev_parse(branch_ref(kept))
            if local is not None and local != head[1]:
                # This very carry, made before a crash cut the run short: taken as it is.
                parents = calls.run("rev-list", "--parents", "-n", "1", local).out.split()[1:]
                if parents != [head[1], below[1]]:
                    raise CouncilError(
                        f"branch {kept} is at {local[:12]}, not at the pushed head {head[1][:12]}"
                    )
                return Carried(local, carry_up(calls, head[1], below[1], message).conflicts)
            carried = carry_up(calls, head[1], below[1], message)
            move_branch(calls, kept, carried.commit, local or ZERO_SHA)
            return carried

        return await anyio.to_thread.run_sync(carry)

    async def stack_unresolved(self, commit: str, paths: Sequence[str]) -> list[str]:
        """Which of ``paths`` (a carried change's conflicts) still hold git's conflict
        markers in ``commit`` (``stack_git.unresolved``)."""
        return await anyio.to_thread.run_sync(unresolved, GitCalls(self._git), commit, paths)

    async def confirm_pull_landed(self, remote: str, commit: str) -> PullLanded:
        """Whether ``commit`` is on the remote's base now (``pull_git.confirm_landed``)."""

        def confirm() -> PullLanded:
            calls = GitCalls(self._git)
            return confirm_landed(calls, self._checkouts, remote, self._base_branch, commit)

        return await anyio.to_thread.run_sync(confirm)

    async def follow_pull_base(self, remote: str) -> PullLanded:
        """The remote's base fetched and the local base brought along when safe
        (``pull_git.refresh_base``)."""

        def follow() -> PullLanded:
            return refresh_base(GitCalls(self._git), self._checkouts, remote, self._base_branch)

        return await anyio.to_thread.run_sync(follow)

    async def vanished(
        self, landed: Mapping[str, str], *, at: str | None = None
    ) -> list[VanishedLanding]:
        """Of ``landed`` (task id -> its recorded landing commit), the landings the base no
        longer has (``merge.vanished``). ``at``: the base tip a landing just read (no fetch, no
        read; the trailer index already knows it: answered on the event loop when it knows every
        one); else the base is read now (fetched first in remote mode). Nothing to look up
        costs nothing."""
        if not landed:
            return []
        if at is not None and self._history.all_known(at, landed):
            return []  # every one on the tip the landing read, as the index knows: no hop

        def look() -> list[VanishedLanding]:
            calls = GitCalls(self._git)
            base = at
            if base is None:
                if self._remote is not None:
                    base = self._remote.current(calls)
                else:
                    base = calls.rev_parse(self._base_ref)
            return find_vanished(calls, self._history, base, landed, fresh=at is None)

        return await anyio.to_thread.run_sync(look)

    def still_on(self, older: str, newer: str) -> bool:
        """Whether every landing the base held at tip ``older`` is still on it at ``newer``, as
        the trailer index knows without a git call (``TaskIndex.extends``): False when it
        cannot tell so. On the event loop."""
        return self._history.extends(older, newer)

    async def restore_branch(self, branch: str, landing: str) -> str | None:
        """Make sure ``branch`` holds the work of a landing that vanished, to land it again:
        this clone's branch as kept; else, in remote mode, the one published on the remote
        (``refs/council/branches/<branch>``); else created at the branch side of ``landing``
        (its second parent) while git still has it. Its tip, or None when none is left."""
        ref = branch_ref(branch)
        if (
            self._remote is not None
            and await anyio.to_thread.run_sync(GitCalls(self._git).rev_parse, ref) is None
        ):
            try:
                fetched = await fetch_branch(self._git, self._remote.remote, branch)
            except CouncilError as exc:
                log.warning("cannot fetch the kept branch %s: %s", branch, exc)
                fetched = None
            if fetched is not None:
                return fetched

        def restore() -> str | None:
            calls = GitCalls(self._git)
            tip = kept_tip(calls, ref, landing)
            if tip is None or calls.rev_parse(ref) == tip:
                return tip
            with ref_book.writing():  # noted with the write, for the tamper check
                made = calls.run(
                    "update-ref",
                    "-m",
                    "council: kept branch of a vanished landing",
                    ref,
                    tip,
                    ZERO_SHA,
                    check=False,
                )
                if made.ok:
                    ref_book.note(ref, None, tip)
            return tip if made.ok else calls.rev_parse(ref)

        return await anyio.to_thread.run_sync(restore)
