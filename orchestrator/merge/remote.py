"""Landing on a shared remote's base branch: the merge queue's remote mode.

With ``MergeQueue(remote="origin")`` the base branch of record is the remote's
``refs/heads/<base>``, and the git server's own compare-and-swap is what makes a landing safe
across workstations. One attempt:

1. **Fetch** the remote's base into ``refs/remotes/<remote>/<base>`` and take its tip B.
2. **Decide** exactly as the local queue does (the secret gate, ``merge.secret_gate``, then
   ``merge.attempt.examine``, against B): already
   landed (``Council-Task`` trailer on B's first-parent history, or B contains the tip),
   conflict, or a merged tree; then ``commit-tree`` makes the merge commit M. No ref moves.
3. **Write ahead.** ``before_push(PushIntent)`` is awaited on the event loop, between the
   worker-thread call that built M and the one that pushes it; if it raises, nothing is
   pushed and the error propagates (a fenced-out workstation's record raises ``StaleClaim``).
4. **Push** ``M`` to ``refs/heads/<base>`` with ``--force-with-lease=refs/heads/<base>:B``
   and never a ``+`` (``git.remote_refs.push_ref``). "The tip moved" is a retry of the whole
   attempt from 1 (bounded by the queue's ``max_attempts`` and backoff); any other refusal is
   ``RemotePushRefused`` carrying the server's message.
5. **Follow.** The tracking ref is set to M, and this clone's own base is brought to M only
   when safe (``merge.follow``); if it stays behind the result says so, but never waits:
   the work has landed.

Git's lock files in this clone do not block a landing (the push writes none of them); a lock
in the way of following leaves the local base behind, named in the result's message.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio.to_thread

from orchestrator.errors import WorkspaceError
from orchestrator.git.merge_tree import GitCalls, branch_ref
from orchestrator.git.remote_refs import check_remote_name, fetch_ref, push_ref
from orchestrator.merge.attempt import Request, Retry
from orchestrator.merge.cars import Cars, Outcome
from orchestrator.merge.checkout import CheckoutFinder
from orchestrator.merge.follow import follow_landing
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.safety.crashpoints import crash_point

__all__ = ["BeforePush", "PushIntent", "RemoteBase"]


@dataclass(frozen=True)
class PushIntent:
    """What is about to be pushed: the remote's base ``base`` (B) is to become
    ``merge_commit`` (M), a merge of ``branch_tip`` for ``task_id``. ``attempt`` counts from
    1; a retried landing announces each new M."""

    remote: str
    base_branch: str
    task_id: str
    session_id: str
    branch: str
    base: str
    merge_commit: str
    branch_tip: str
    attempt: int


BeforePush = Callable[[PushIntent], Awaitable[None]]
"""The write-ahead callback: awaited before each push; raising stops the landing there."""


class RemoteBase:
    """The base branch of record on ``remote``, for one ``MergeQueue``."""

    def __init__(
        self,
        remote: str,
        base_branch: str,
        history: TaskIndex,
        checkouts: CheckoutFinder,
        before_push: BeforePush | None = None,
        gate: SecretGate | None = None,
    ) -> None:
        self.remote = check_remote_name(remote)
        self.base_branch = base_branch
        self.source = branch_ref(base_branch, "base branch")
        self.tracking = branch_ref(f"refs/remotes/{remote}/{base_branch}", "tracking branch")
        self._history = history
        self._checkouts = checkouts
        self._before_push = before_push
        self._gate = gate or SecretGate()
        # One writer of the tracking ref at a time in this process: two fetches (a landing's
        # and a fresh base for new work) racing on it make git refuse one ("cannot lock ref").
        self._tracking_lock = threading.Lock()

    def current(self, calls: GitCalls) -> str | None:
        """Fetch, then the remote's base tip (None when the remote has no such branch). The
        trailer index follows it (``TaskIndex.follow``), so a commit pushed onto it later,
        before any landing, is seen as the move outside the queue it is."""
        with self._tracking_lock:
            if not fetch_ref(calls, self.remote, self.source, self.tracking):
                return None
            tip = calls.rev_parse(self.tracking)
        if tip is not None:
            self._history.follow(calls, tip)
        return tip

    async def attempt(
        self,
        calls: GitCalls,
        requests: list[Request],
        number: int,
        failed: dict[str, Exception] | None = None,
        before_push: BeforePush | None = None,
    ) -> list[Outcome] | Retry:
        """One attempt at a train (steps 1 to 5 above, ``merge.cars``): every car built on the
        one before it, each announced to ``before_push`` (this call's, else the queue's), one
        push of the last; a ``Retry`` when the remote's tip moved."""
        announce = before_push or self._before_push
        built = await anyio.to_thread.run_sync(self._start, calls, failed)
        for request in requests:
            car = await anyio.to_thread.run_sync(built.add, request)
            if car is None or announce is None:
                continue
            report = car.report
            try:
                await announce(
                    PushIntent(
                        remote=self.remote,
                        base_branch=self.base_branch,
                        task_id=request.task_id,
                        session_id=request.session_id,
                        branch=request.branch,
                        base=car.parent,
                        merge_commit=car.commit,
                        branch_tip=report.branch_tip,
                        attempt=number,
                    )
                )
            except Exception as exc:  # its write-ahead record refused it: it alone stays
                built.drop(car, exc)
        if not built.cars:
            return built.outcomes()
        crash_point("merge.committed")
        return await anyio.to_thread.run_sync(self._push, calls, built)

    def _start(self, calls: GitCalls, failed: dict[str, Exception] | None) -> Cars:
        """Fetch the remote's base: the train starts on its tip."""
        with self._tracking_lock:
            fetched = fetch_ref(calls, self.remote, self.source, self.tracking)
        if not fetched:
            raise WorkspaceError(
                f"base branch {self.base_branch!r} does not exist on remote {self.remote!r}; "
                "push it there once before landing through the remote"
            )
        common = self._checkouts.common_dir(calls)
        return Cars(
            calls,
            self.tracking,
            self.base_branch,
            self._history,
            self._gate,
            common,
            failed=failed,
        )

    def _push(self, calls: GitCalls, built: Cars) -> list[Outcome] | Retry:
        base, commit = built.base, built.tip
        moved = push_ref(calls, self.remote, commit, self.source, base)
        if moved is not None:
            return Retry(f"{self.remote} refused {self.source}: {moved}")
        crash_point("merge.ref_updated")
        # The tracking ref only mirrors the remote (a later fetch overwrites it), so a plain
        # update is right; our push is what the remote holds now. Failing to mirror it would
        # only make the next fork start from an older base: never the landing's failure.
        with self._tracking_lock:
            calls.run(
                "update-ref", "-m", "council: pushed a landing", self.tracking, commit, check=False
            )
        built.record(self._history)
        followed = follow_landing(calls, self._checkouts, self.base_branch, commit, built.tree)
        landed = f"landed on {self.remote}/{self.base_branch} in {commit}"
        return built.outcomes(
            pushed_to=self.remote,
            checkout=followed.checkout,
            local_behind=bool(followed.behind),
            message=f"{landed}; {followed.behind}" if followed.behind else landed,
        )
