"""The merge queue: lands finished session branches on the base branch, one at a time.

Contract of ``MergeQueue.merge(session_id, branch, task_id=...)``:

- **Serialized, in trains.** Each merge runs inside ``merge_lock(session_id)``, the layer-3
  lock (the ``LockManager``'s, across processes); without one, an in-process ``anyio.Lock``
  shared by this queue's merges, which serializes one process only. Either way the ref update
  is a compare-and-swap, so even a writer outside every lock cannot cause a lost update. Merges
  asked for while another is under way land together, as one train (``merge.train``,
  ``merge.cars``): one lock hold, one read of the base, each merge commit built on the one
  before in the order asked, one update (one push); each call still gets its own result or
  error, exactly as if the train's members had landed one after another.
- **No working tree.** ``git merge-tree --write-tree`` computes the merged tree from objects;
  ``git commit-tree`` makes a two-parent merge commit (always, even when a fast-forward would
  do, so each landing is one revertable commit) carrying the trailers
  ``Council-Task: <task-id>`` and ``Council-Session: <session-id>``, committed by ``identity``;
  ``git update-ref <base> <new> <old>`` moves the base only if nobody moved it meanwhile,
  otherwise the whole computation is redone on the new tip: at once, then with jittered
  exponential backoff (``max_attempts``, about 3 s in all by default, then ``MergeContention``).
- **Never twice.** If the base already contains the branch tip, or its first-parent history
  already has a commit with this task's ``Council-Task`` trailer (a rebased or recreated
  branch), the answer is ``already_merged`` and nothing is written.
- **Conflicts change nothing.** ``conflict`` lists the conflicted paths; base and branch stay.
- **The user's checkout is never modified behind their back.** If the base is checked out
  somewhere it is fast-forwarded in place only when clean (see ``merge.checkout``); otherwise
  ``waiting_for_checkout`` names the checkout and what is in the way, nothing moves, and a
  later ``merge`` retries. A fast-forward git refused half-way is put back exactly: the
  checkout never keeps a merge whose ref did not move.
- **Git's lock files are looked for first.** Before writing, the queue looks for the lock files
  of git's the update needs (``merge.git_locks``: ``<base ref>.lock``, ``packed-refs.lock``
  and, for a checkout of the base, its ``HEAD.lock`` and ``index.lock``). One that no process
  holds (a crashed git's) fails the merge at once with ``BaseLocked``, naming it, its age and
  that nobody holds it; one a live git may hold is waited for up to ``lock_wait`` seconds,
  then ``BaseLocked`` names its holder. The queue never removes one (the user's repository).
- **No secret lands.** Each attempt first reads every object the branch would bring onto
  the base and looks for the secrets the run knows (``merge.secret_gate``); a hit raises
  ``SecretInHistory`` (naming where and which secret, never its value) after the branch and
  every ref holding that work were pointed at a masked rewrite. Nothing runs when no secret
  is known.
- **Hooks never run.** Git runs with ``core.hooksPath`` at an empty directory
  (``<repo>/.council/git-hooks`` unless told otherwise).

**Remote mode.** ``remote="origin"`` makes the remote's ``refs/heads/<base>`` the base of
record: each attempt fetches it, decides and builds the merge commit against its tip as above,
awaits the ``before_push`` write-ahead callback, and pushes with a lease on that tip (never
forced); a moved tip is retried like a moved local base, any other refusal is
``RemotePushRefused``. The local base follows only when safe and never makes a landing wait
(``merge.remote``, ``merge.follow``). ``landed_commit(s)`` fetch first.

Each local attempt's git steps run in one worker thread call (the event loop never blocks; a
cancelled caller waits for that call, so an attempt is never abandoned half-way). On the hot
path (base not checked out, task not yet landed) a merge starts 3 git processes:
``merge-tree``, ``commit-tree``, ``update-ref`` (the base's checked-out update instead of the
last, where it is checked out); both tips and the base's tree are read from git's files
(``git.ref_files``: the base tip is the loose merge commit of the last landing), or with one
``rev-parse`` where those cannot tell. The ancestry check runs only when the merged tree
equals the base's tree (only then can the base already contain the tip); the trailer history
is read once per queue and then only when another writer moved the base.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from contextlib import AbstractAsyncContextManager
from dataclasses import dataclass, replace
from pathlib import Path

import anyio
import anyio.to_thread

from orchestrator.errors import (
    CouncilError,
    WorkspaceError,
)
from orchestrator.events import Event
from orchestrator.events.merge import (
    MergeAlreadyMerged,
    MergeCompleted,
    MergeConflict,
    MergeFailed,
    MergeStarted,
    MergeWaiting,
)
from orchestrator.git.merge_tree import (
    GitCalls,
    branch_ref,
)
from orchestrator.git.repo import Git
from orchestrator.ids import check_id, is_commit_id
from orchestrator.merge import outside
from orchestrator.merge.attempt import Request as _Request
from orchestrator.merge.attempts import Attempts, TakesInCall, Waited
from orchestrator.merge.cars import Outcome
from orchestrator.merge.checkout import (
    CheckoutFinder,
)
from orchestrator.merge.forecast import Forecasts
from orchestrator.merge.history import TaskIndex
from orchestrator.merge.lending import Lending
from orchestrator.merge.local import LocalBase
from orchestrator.merge.remote import BeforePush, PushIntent, RemoteBase
from orchestrator.merge.secret_gate import SecretGate
from orchestrator.merge.train import Boarding, Ticket
from orchestrator.merge.types import ConflictForecast, GitIdentity, MergeResult, MergeStatus
from orchestrator.merge.vanished import VanishedLanding
from orchestrator.safety import secret_mask
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.protocol import StateStore

__all__ = [
    "BeforePush",
    "ConflictForecast",
    "GitIdentity",
    "MergeLockFactory",
    "MergeQueue",
    "MergeResult",
    "MergeStatus",
    "PushIntent",
    "Rider",
    "VanishedLanding",
]

log = logging.getLogger(__name__)

MergeLockFactory = Callable[[str], AbstractAsyncContextManager[object]]
"""``merge_lock(session_id)``: an async context manager held for the whole merge."""

_EVENTS: dict[
    MergeStatus, type[MergeCompleted | MergeAlreadyMerged | MergeConflict | MergeWaiting]
] = {
    MergeStatus.MERGED: MergeCompleted,
    MergeStatus.ALREADY_MERGED: MergeAlreadyMerged,
    MergeStatus.CONFLICT: MergeConflict,
    MergeStatus.WAITING_FOR_CHECKOUT: MergeWaiting,  # a warning: the landing waits
}


class MergeQueue:
    """Merges session branches into ``base_branch`` of the repository at ``repo_path``."""

    def __init__(
        self,
        repo_path: Path | str,
        base_branch: str,
        *,
        merge_lock: MergeLockFactory | None = None,
        store: StateStore | None = None,
        identity: GitIdentity | None = None,
        hooks_dir: Path | str | None = None,
        max_attempts: int = 10,
        lock_wait: float = 30.0,
        train_limit: int = 32,
        remote: str | None = None,
        before_push: BeforePush | None = None,
        secrets: Callable[[], Mapping[str, str]] = secret_mask.names,
    ) -> None:
        self.repo_path = Path(repo_path)
        self.base_branch = base_branch
        self.base_ref = branch_ref(base_branch, "base branch")
        self.identity = identity or GitIdentity()
        self.max_attempts = max(1, max_attempts)
        self.lock_wait = max(0.0, lock_wait)
        # The same empty hooks directory the worktree layer uses (``RepoLayout.hooks_dir``).
        hooks = Path(hooks_dir) if hooks_dir else self.repo_path / ".council" / "git-hooks"
        self.git = Git(self.repo_path, hooks, self.identity.env())
        self._store = store
        self._merge_lock = merge_lock
        self._own_lock: anyio.Lock | None = None
        self._boarding = Boarding(train_limit)  # merges waiting for the next train
        self._said_waiting: dict[str, str] = {}  # task id -> why its merge waits, as last said
        self._history = TaskIndex()
        self._checkouts = CheckoutFinder(self.base_ref)
        # No secret lands (``merge.secret_gate``); ``secrets``: value -> name, all the run knows.
        self._gate = SecretGate(secrets, self.repo_path / ".council" / "objects")
        if before_push is not None and remote is None:
            raise WorkspaceError("before_push is called before a push: it needs a remote")
        self.remote = remote
        self._local = LocalBase(
            self.repo_path, self.base_ref, base_branch, self._history, self._checkouts, self._gate
        )
        self._remote = (
            RemoteBase(remote, base_branch, self._history, self._checkouts, before_push, self._gate)
            if remote is not None
            else None
        )
        self._forecasts = Forecasts(self._checkouts)
        self._trains = Attempts(
            self.git,
            base_branch,
            self._local,
            self._remote,
            max_attempts=self.max_attempts,
            lock_wait=self.lock_wait,
        )
        # What the features beside the queue use of its parts (pull requests, the relander)
        self.lending = Lending(
            self.git, base_branch, self._checkouts, self._gate, self._history, self._remote
        )

    async def merge(
        self, session_id: str, branch: str, *, task_id: str, message: str | None = None
    ) -> MergeResult:
        """Land ``branch`` on the base; see the module docstring for every outcome. Merges
        asked for while another is under way land together in the next train
        (``merge.train``): each call still gets its own result, or raises its own error."""
        request = _Request(
            check_id(session_id, "session id"),
            check_id(task_id, "task id"),
            branch,
            branch_ref(branch),
            message,
        )
        ticket = Ticket(request, time.perf_counter())
        crash_point("merge.asked", task_id)
        await self._boarding.ride(ticket, lambda: self._lock_for(session_id), self._lead)
        if ticket.error is not None:
            raise ticket.error
        assert ticket.result is not None
        return ticket.result

    async def land_now(self, riders: list[Rider], before_push: BeforePush) -> list[Outcome]:
        """Land ``riders`` on the remote as one train, the caller holding the team's merge lock
        (``scheduler.team.train``): each rider's exact ``tip``, never what a ref names now, each
        car announced to ``before_push`` (its own fence); each outcome in order, as ``merge``."""
        if self._remote is None:
            raise WorkspaceError("a train of the team's riders lands on a remote")
        now = time.perf_counter()
        tickets = []
        for rider in riders:
            if not is_commit_id(rider.tip):
                raise WorkspaceError(f"rider {rider.task_id!r}: {rider.tip!r} is not a commit id")
            request = _Request(
                check_id(rider.session_id, "session id"),
                check_id(rider.task_id, "task id"),
                rider.branch,
                rider.tip,  # the commit itself: nothing a ref was moved to since is read
                None,
            )
            branch_ref(rider.branch)  # a name fit for the merge commit's message
            tickets.append(Ticket(request, now, boarded=now))
        await self._lead(tickets, None, list, before_push)
        return [t.result if t.result is not None else t.error or _unsettled(t) for t in tickets]

    async def _lead(
        self,
        tickets: list[Ticket],
        held: object = None,
        more: Callable[[], list[Ticket]] = list,
        before_push: BeforePush | None = None,
    ) -> None:
        """Run one train (the lock held, or ``held`` taking it in the first attempt's call:
        ``attempts.TakesInCall``; ``more`` boards what came while a lock another process held
        was waited for, ``tickets`` grown in place): each ticket settled with its result or
        its error, and its events said."""
        taking = held if isinstance(held, TakesInCall) else None
        if taking is None:
            crash_point("merge.locked")
        await self._started(tickets)
        try:
            requests = [t.request for t in tickets]
            landed = await self._trains.land(requests, before_push, taking=taking)
            if isinstance(landed, Waited):  # taken after a wait: aboard, what came meanwhile
                crash_point("merge.locked")
                await self._started(more())
                landed = await self._trains.land([t.request for t in tickets], before_push)
            assert not isinstance(landed, Waited)  # (no taking: never)
            outcomes: list[Outcome] = landed
        except CouncilError as exc:  # the whole train: contention, a lock, a refused push
            outcomes = [exc] * len(tickets)
        await self._tell_outside()
        done = time.perf_counter()
        for ticket, outcome in zip(tickets, outcomes, strict=True):
            request = ticket.request
            if isinstance(outcome, Exception):
                ticket.error = outcome
                failed = MergeFailed(
                    session_id=request.session_id,
                    task_id=request.task_id,
                    branch=request.branch,
                    error=str(outcome),
                )
                await self._emit(failed)
                continue
            ticket.result = result = replace(
                outcome,
                timings={
                    "lock_wait": ticket.boarded - ticket.asked,
                    "git": done - ticket.boarded,
                    "total": done - ticket.asked,
                },
            )
            if result.status is MergeStatus.WAITING_FOR_CHECKOUT:
                # Said once per reason: a run retries a waiting merge every half second.
                if self._said_waiting.get(request.task_id) == result.message:
                    continue
                self._said_waiting[request.task_id] = result.message
            else:
                self._said_waiting.pop(request.task_id, None)
            await self._emit(_EVENTS[result.status](**result.event_data()))

    async def _started(self, tickets: list[Ticket]) -> None:
        for ticket in tickets:
            request = ticket.request
            await self._emit(
                MergeStarted(
                    session_id=request.session_id,
                    task_id=request.task_id,
                    branch=request.branch,
                    base_branch=self.base_branch,
                )
            )

    @property
    def queued(self) -> int:
        """Merges asked for that wait for the next train (``merge.train``)."""
        return self._boarding.queued

    async def refresh(self) -> str | None:
        """Fetch the remote's base (remote mode) so new work forks from what the team has
        landed; its tip, or None without a remote or when the remote has no such branch."""
        remote = self._remote
        if remote is None:
            return None
        tip = await anyio.to_thread.run_sync(remote.current, GitCalls(self.git))
        await self._tell_outside()
        return tip

    async def outside_work(self, tip: str, forked: str) -> list[tuple[str, str]]:
        """The commits that landed on the base outside the queue and are a branch's own
        work: in ``tip``, not in ``forked`` (where it started), as ``(sha, subject)``. A CLI
        that pushed its commits onto the team's base (``TaskIndex.outside_work``); no git
        process while no such commit was seen."""
        return await anyio.to_thread.run_sync(
            self._history.outside_work, GitCalls(self.git), tip, forked
        )

    async def _tell_outside(self) -> None:
        """Say what the base gained outside every queue (``merge.outside``), remote mode only."""
        if self._remote is not None:
            found = self._history.take_outside()
            await outside.tell(
                found, base_branch=self.base_branch, remote=self.remote, emit=self._emit
            )

    async def landed_commit(self, task_id: str) -> str | None:
        """The base commit that landed ``task_id`` (a ``Council-Task`` trailer on the base's
        first-parent history), or None: lets a new run skip work that is already merged."""
        return (await self.landed_commits([task_id])).get(task_id)

    async def landed_commits(self, task_ids: Iterable[str]) -> dict[str, str]:
        """``landed_commit`` of many tasks at once (the base is read once for all of them):
        task id -> commit, for those already landed."""
        wanted = list(task_ids)
        if not wanted:
            return {}

        def lookup() -> dict[str, str]:
            calls = GitCalls(self.git)
            if self._remote is not None:
                base = self._remote.current(calls)  # fetched first: the remote's is of record
            else:
                base = calls.rev_parse(self.base_ref)
            if base is None:
                return {}
            found = {task: self._history.lookup(calls, base, task) for task in wanted}
            return {task: commit for task, commit in found.items() if commit is not None}

        return await anyio.to_thread.run_sync(lookup)

    async def forecast_conflicts(
        self, branch_a: str, branch_b: str, *, a_forked_at: str | None = None
    ) -> ConflictForecast:
        """Would merging these two branches conflict? Computed at their merge base by
        ``merge-tree``: no ref, index or file changes (only unreferenced objects are written).

        ``a_forked_at``: the commit ``branch_a`` was made from. While its tip is still that
        commit (read from git's files, no process), it brings nothing, so nothing can conflict
        and no ``merge-tree`` runs: a session that has not committed yet is the common case of
        an earlier attempt still at work."""
        return await anyio.to_thread.run_sync(
            self._forecasts.one, GitCalls(self.git), branch_a, branch_b, a_forked_at
        )

    async def forecast_many(
        self, pairs: Sequence[tuple[str, str, str | None]]
    ) -> list[ConflictForecast | WorkspaceError]:
        """``forecast_conflicts`` of each pair ``(branch_a, branch_b, a_forked_at)``, in order,
        all in one worker-thread call (a merge that waits for the attempts ahead of it asks
        about all of them at once); a pair git cannot answer gets its error in its place
        (a branch gone, a tip not readable), the others their forecast."""

        if not pairs:
            return []
        return await anyio.to_thread.run_sync(self._forecasts.many, GitCalls(self.git), pairs)

    # -- plumbing ---------------------------------------------------------------------------

    def _lock_for(self, session_id: str) -> AbstractAsyncContextManager[object]:
        if self._merge_lock is not None:
            return self._merge_lock(session_id)
        if self._own_lock is None:
            self._own_lock = anyio.Lock()  # created inside the event loop that uses it
        return self._own_lock

    async def _emit(self, event: Event) -> None:
        if self._store is None:
            return
        try:
            await self._store.emit(event)
        except Exception:
            # The merge already happened (or was refused); a failing audit trail must not turn
            # that into an error the caller would retry.
            log.exception("cannot record %s", event.type)


@dataclass(frozen=True)
class Rider:
    """A member of the team's train (``land_now``): ``tip`` the commit its owner recorded."""

    session_id: str
    task_id: str
    branch: str
    tip: str


def _unsettled(ticket: Ticket) -> Exception:
    return WorkspaceError(f"task {ticket.request.task_id!r}: its train settled nothing for it")
