"""The git of landing by pull request (``landing.via: pull_request``), for the scheduler's
``pulls.landing``: a task's branch pushed to the remote as the pull request's head,
and, once the forge says it merged, the remote's base fetched and the task's work confirmed
on it (the clone's own base then follows when safe, ``follow``).

The head is pushed under a lease (``git.remote_refs.push_ref``, never forced): first only if
the remote has no such branch; when it has one (this task pushed it before a crash, or an
earlier round did), leased on the value the remote holds now (``git ls-remote``), so a push
never replaces a commit it did not see. Blocking: run in a worker thread.
"""

from __future__ import annotations

from dataclasses import dataclass

from orchestrator.errors import WorkspaceError
from orchestrator.git.merge_tree import GitCalls
from orchestrator.git.remote_refs import check_remote_name, fetch_ref, push_ref
from orchestrator.merge.checkout import CheckoutFinder
from orchestrator.merge.follow import follow_landing

__all__ = ["PullLanded", "confirm_landed", "push_head", "refresh_base"]


def push_head(calls: GitCalls, remote: str, commit: str, branch: str) -> None:
    """Make the remote's ``refs/heads/<branch>`` hold ``commit`` (module doc)."""
    check_remote_name(remote)
    target = f"refs/heads/{branch}"
    expected = ""
    for _ in range(3):
        if push_ref(calls, remote, commit, target, expected) is None:
            return
        listed = calls.run("ls-remote", "--refs", remote, target).stdout.split()
        expected = listed[0] if listed else ""
    raise WorkspaceError(f"could not push {branch} to {remote}: it kept moving under the push")


@dataclass(frozen=True)
class PullLanded:
    """``base``: the remote base's tip as fetched; ``contained``: ``commit`` is on it;
    ``behind``: why the clone's own base did not follow ("" when it did)."""

    base: str | None
    contained: bool
    behind: str = ""


def confirm_landed(
    calls: GitCalls, checkouts: CheckoutFinder, remote: str, base_branch: str, commit: str
) -> PullLanded:
    """Fetch the remote's base and tell whether ``commit`` is on it; when it is, the local
    base follows it where nothing of the user's is in the way."""
    tip = _fetch_base(calls, remote, base_branch)
    if tip is None or calls.rev_parse(commit) is None or not calls.is_ancestor(commit, tip):
        return PullLanded(tip, False)
    return PullLanded(tip, True, _follow(calls, checkouts, base_branch, tip))


def refresh_base(
    calls: GitCalls, checkouts: CheckoutFinder, remote: str, base_branch: str
) -> PullLanded:
    """Fetch the remote's base and bring the local base along when safe (a resolve round
    forks its new worktree from it); ``contained``: the local base holds the remote's tip."""
    tip = _fetch_base(calls, remote, base_branch)
    if tip is None:
        return PullLanded(None, False)
    behind = _follow(calls, checkouts, base_branch, tip)
    return PullLanded(tip, not behind, behind)


def _fetch_base(calls: GitCalls, remote: str, base_branch: str) -> str | None:
    check_remote_name(remote)
    tracking = f"refs/remotes/{remote}/{base_branch}"
    if not fetch_ref(calls, remote, f"refs/heads/{base_branch}", tracking):
        return None
    return calls.rev_parse(tracking)


def _follow(calls: GitCalls, checkouts: CheckoutFinder, base_branch: str, tip: str) -> str:
    tree = calls.run("rev-parse", f"{tip}^{{tree}}").out
    return follow_landing(calls, checkouts, base_branch, tip, tree).behind
