"""One landing train for the whole team: whichever workstation holds the team's merge lock lands
every branch that is ready, from every workstation, checked once and pushed once.

Without it each workstation took the team's merge lock (``locks.team_merge``) to land its own
branches, so landings were serial across workstations and the lock, not the CLIs, bounded the
team. With it:

- **Ready.** An attempt whose work is to be landed by the queue publishes its branch once more
  (``TeamWork.publish``: the push gate first; a tip published already is not pushed again) and
  writes what it asks to land in the store: one keyed record (namespace ``team-train``, key the
  task), ``ready``, naming the run's session, its worktree session, its branch, the exact
  commit the remote was given (``tip``), its claim's fencing token and this workstation. It
  then waits for its answer, never for the lock.
- **The lander.** A waiting workstation takes one look at the team's merge lock
  (``TeamMergeLock.tried``) each ``_POLL`` seconds (one waiter of a workstation looks for all
  of them). The one that has it reads every ``ready`` record of the session (oldest first, at
  most ``_TRAIN_LIMIT``), fetches the published branches of the others in one fetch
  (``git.publish.fetch_published``) and lands them all as one train
  (``MergeQueue.land_now``): the same secret gate, ``merge-tree`` checks and trailer look as any
  landing, one merge commit per task, one push under a lease. Each rider is landed from the
  commit its owner recorded, **never from what its branch on the remote points at now**: a
  branch moved since (by a CLI, or a teammate) brings that commit only if it still holds it,
  and then only it lands; when it no longer does, the rider is given back (below).
- **Fenced.** Before the push each car is announced: the lander's own tasks as any landing's
  are (``attempts.landing_log``: the claim renewed with its token, the write-ahead record
  ``merge-attempts``); a teammate's task by renewing its claim with the token its ready record
  names (the store refuses a token that no longer holds: ``StaleClaim``, the car taken off,
  ``merge.fenced`` said), then the same ``merge-attempts`` record, naming this workstation as
  the lander and the task's owner.
- **Answers.** Each teammate's record is rewritten (a compare-and-set on the version read, so
  a newer attempt's record is never overwritten) with its outcome: ``landed`` or ``conflict``
  with the merge's result, ``refused`` for the secret gate's hit (the owner fails the task as
  its own gate's hit would), or ``returned`` (its commit not fetched, its claim stale, the
  train refused as a whole...): the owner lands it itself, as before this train existed. The
  owner reads its answer (its branch tip and token checked against what it recorded), fetches
  the base when the result names a tip it has not seen, deletes the record and ends the task
  as its own landing would (``Lander``): done, worktree retired. An owner that heard nothing
  for ``_GIVE_UP`` lease periods takes its record back and lands itself.

**Crash-safe, landed once.** Nothing here decides whether a task landed but the base itself: a
lander killed before its push leaves the records ``ready`` for the next train; killed after,
the next train finds each task's ``Council-Task`` trailer on the base and answers
``already_merged`` (the merge queue's rule), so no task lands twice and none is lost. An
owner killed while waiting loses its claim as any dead workstation does; its task is taken
up again and found landed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import anyio

from orchestrator.errors import (
    CouncilError,
    CredentialInWork,
    LockTimeout,
    SecretInHistory,
    StaleClaim,
    StateError,
    VersionConflict,
)
from orchestrator.events.merge import MergeFenced
from orchestrator.git.publish import fetch_published
from orchestrator.ids import check_id, is_commit_id
from orchestrator.locks.team_merge import TeamMergeLock, lease_for
from orchestrator.merge.queue import Rider
from orchestrator.merge.remote import PushIntent
from orchestrator.merge.types import MergeResult, MergeStatus
from orchestrator.models import KeyedRecord, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.scheduler.attempts.attempt import Attempt
from orchestrator.scheduler.attempts.inflight import InFlight
from orchestrator.scheduler.attempts.landing_log import NAMESPACE as WRITE_AHEAD
from orchestrator.scheduler.attempts.landing_log import LandingLog
from orchestrator.scheduler.context import RunContext
from orchestrator.scheduler.team.train_answers import (
    SHOWN,
    TEXT,
    listed,
    masked,
    result_data,
    result_from,
)
from orchestrator.scheduler.team.work import TeamWork
from orchestrator.state.team import Team

__all__ = ["NAMESPACE", "TeamTrain"]

log = logging.getLogger(__name__)

NAMESPACE = "team-train"
_POLL = 0.15  # seconds between a workstation's looks at the lock and its answers
_TRAIN_LIMIT = 32  # riders in one train
_GIVE_UP = 3  # lease periods an owner waits without an answer before landing itself
_KEEP = 6 * 3600.0  # seconds a record lasts unanswered or unread (an owner gone)


class _Return:
    """The answer "land it yourself" (the rider was given back, or nobody answered)."""


RETURN = _Return()
Answer = MergeResult | SecretInHistory | Exception | _Return


@dataclass(eq=False)
class _Waiter:
    attempt: Attempt
    tip: str
    version: int = 0  # of its ready record as written
    look: int = 0  # the looks at the records begun before it was written
    answer: Answer | None = None

    def settle(self, answer: Answer) -> None:
        if self.answer is None:
            self.answer = answer


@dataclass(frozen=True)
class _Entry:
    """A ready record read by the lander, checked."""

    record: KeyedRecord
    rider: Rider
    token: int
    holder: str
    own: bool


class TeamTrain:
    """This workstation's side of the team's train (module doc)."""

    def __init__(self, run: RunContext, team: Team, work: TeamWork, inflight: InFlight) -> None:
        self._run = run
        self._team = team
        self._work = work
        config = run.services.config
        self._lease = lease_for(config.scheduler.stale_threshold)
        self._lock = TeamMergeLock(
            run.services.store, config.base_branch, team.workstation, self._lease
        )
        self._own_fence = LandingLog(run, inflight)  # this workstation's tasks, as any landing
        self._waiting: dict[str, _Waiter] = {}
        self._driving = False
        self._looks = 0  # reads of the records begun (``_read_answers``)
        self._turn: anyio.Event | None = None
        self._fetching = anyio.Lock()
        self._seen_tips: list[str] = []  # base tips this clone fetched or pushed lately

    # -- the owner's side -------------------------------------------------------------------

    async def land(self, attempt: Attempt) -> MergeResult | None:
        """The attempt's landing by the team's train: its result, or None when this
        workstation's queue is to land it as before (module doc). Raises the secret gate's
        hit (``SecretInHistory``) and, for this workstation's own train, its own errors."""
        run = self._run
        session = attempt.session
        if (
            session is None
            or attempt.relanding
            or attempt.group is not None
            or attempt.lost
            or not attempt.token
            or not run.session_id
            or run.services.merges.remote is None
        ):
            return None
        tip = await self._work.publish(attempt)
        if not is_commit_id(tip):
            return None
        key = attempt.key
        waiter = _Waiter(attempt, tip)
        data = {
            "state": "ready",
            "session": run.session_id,
            "worktree_session": session.session_id,
            "branch": session.branch,
            "tip": tip,
            "token": attempt.token,
            "holder": run.holder,
            "asked": utcnow().isoformat(),
        }
        try:
            written = await run.services.store.put_record(NAMESPACE, key, data, ttl=_KEEP)
        except StateError as exc:
            log.warning("task %s: cannot ask the team's train to land it (%s)", key, exc)
            return None
        waiter.version, waiter.look = written.version, self._looks
        self._waiting[key] = waiter
        crash_point("merge.asked", key)
        try:
            answer = await self._wait(waiter)
        finally:
            self._waiting.pop(key, None)
            with anyio.CancelScope(shield=True):
                await self._forget(key, waiter)
        if isinstance(answer, _Return):
            return None
        if isinstance(answer, Exception):
            raise answer
        if answer.status is not MergeStatus.CONFLICT:
            await self._know_base(answer.base_after)
        return answer

    async def _wait(self, waiter: _Waiter) -> Answer:
        """Wait for ``waiter``'s answer, looking at the lock and the answers in turn with this
        workstation's other waiters (one of them at a time)."""
        started = time.monotonic()
        while waiter.answer is None:
            if self._driving:
                if self._turn is None:
                    self._turn = anyio.Event()
                with anyio.move_on_after(_POLL * 4):
                    await self._turn.wait()
                continue
            self._driving = True
            try:
                await self._drive(waiter)
            finally:
                self._driving = False
                turn, self._turn = self._turn, None
                if turn is not None:
                    turn.set()
            if waiter.answer is None and time.monotonic() - started > _GIVE_UP * self._lease:
                waiter.settle(RETURN)  # nobody answered: landed here, as before the train
        return waiter.answer

    async def _drive(self, waiter: _Waiter) -> None:
        """One look: the answers read; while some branch is still ready, a look at the team's
        lock, and a train led when it is free (and this clone's own merge lock, taken after
        it, at once: a landing of this clone's own under way holds it, waiting for the
        team's lock, which this look then lets go); then a nap while some waiter here has no
        answer."""
        assert waiter.attempt.session is not None
        store = self._run.services.store
        look = self._looks = self._looks + 1
        try:
            records = await store.list_records(NAMESPACE)
        except StateError as exc:  # nothing read: nothing answered, no train; the next look
            log.warning("cannot read the team's landing train: %s", exc)
            records = None
        if records is not None:
            self._read_answers(records, look)
        if (
            records is not None
            and self._pending()
            and any(r.data.get("state") == "ready" for r in records)
        ):
            async with self._lock.tried() as had:
                if had:
                    locks = self._run.services.locks
                    try:
                        async with locks.merge_lock(waiter.attempt.session.session_id, _POLL):
                            # read again: more may have become ready meanwhile
                            await self._train(await store.list_records(NAMESPACE))
                    except LockTimeout:
                        pass  # this clone's own landing goes first: the next look
                    except CouncilError as exc:  # its riders settled what they could
                        log.warning("the team's landing train stopped: %s", exc)
        if self._pending():
            await anyio.sleep(_POLL)

    def _pending(self) -> bool:
        return any(w.answer is None for w in self._waiting.values())

    def _read_answers(self, records: list[KeyedRecord], look: int) -> None:
        """Settle the waiters ``records`` (read by look number ``look``) answer."""
        found = {record.key: record for record in records}
        for key, waiter in list(self._waiting.items()):
            record = found.get(key)
            if record is None:
                if waiter.look < look:  # its record was written before this read began
                    waiter.settle(RETURN)  # gone (expired, or taken back): landed here
                continue
            answer = self._answer_of(record, waiter)
            if answer is not None:
                waiter.settle(answer)

    def _answer_of(self, record: KeyedRecord, waiter: _Waiter) -> Answer | None:
        """What a teammate's train answered for ``waiter``; None while it is still ready.
        The record is read as untrusted: an answer for another tip, token or holder than
        the one recorded, or one that does not parse, is "land it yourself"."""
        data = record.data
        state = data.get("state")
        if state == "ready":
            return None
        attempt = waiter.attempt
        if (
            data.get("tip") != waiter.tip
            or data.get("token") != attempt.token
            or data.get("holder") != self._run.holder
        ):
            return RETURN
        if state in ("landed", "conflict"):
            try:
                return result_from(data.get("result"), attempt.key, waiter.tip)
            except (TypeError, ValueError) as exc:
                log.warning("task %s: the team train's answer is unreadable: %s", attempt.key, exc)
                return RETURN
        if state == "refused":
            assert attempt.session is not None
            findings = [str(f)[:TEXT] for f in listed(data.get("findings"))][:SHOWN]
            if data.get("kind") == "credential":
                return CredentialInWork(attempt.session.branch, findings)
            return SecretInHistory(attempt.session.branch, findings, False)
        return RETURN

    async def _forget(self, key: str, waiter: _Waiter) -> None:
        """The record is read (or the wait is over): removed, unless a newer one replaced it."""
        store = self._run.services.store
        try:
            record = await store.get_record(NAMESPACE, key)
            if record is None or record.data.get("tip") != waiter.tip:
                return
            if record.data.get("token") != waiter.attempt.token:
                return
            await store.delete_record(NAMESPACE, key, record.version)
        except VersionConflict:
            # A lander answered just now. Unread, the answer changes nothing: the task lands
            # here (found already landed, if it was) or it was refused, and says so again.
            return
        except StateError as exc:
            log.debug("cannot remove the team train's record of %s: %s", key, exc)

    async def _know_base(self, tip: str) -> None:
        """Fetch the base when a teammate's train moved it to ``tip`` this clone has not seen:
        what follows a landing (the check that landings stay) reads it here."""
        async with self._fetching:
            if tip in self._seen_tips:
                return
            try:
                fetched = await self._run.services.merges.refresh()
            except CouncilError as exc:
                log.warning("cannot fetch the team's base: %s", exc)
                return
            self._seen(tip, fetched)

    def _seen(self, *tips: str | None) -> None:
        for tip in tips:
            if tip and tip not in self._seen_tips:
                self._seen_tips.append(tip)
        del self._seen_tips[:-16]

    # -- the lander's side ------------------------------------------------------------------

    async def _train(self, records: list[KeyedRecord]) -> None:
        """The lock is held: land every ready record of the session as one train."""
        run = self._run
        entries = []
        for record in sorted(records, key=lambda r: str(r.data.get("asked", ""))):
            if record.data.get("state") != "ready" or record.data.get("session") != run.session_id:
                continue
            entry = self._entry(record)
            if entry is not None:
                entries.append(entry)
            if len(entries) >= _TRAIN_LIMIT:
                break
        if not entries:
            return
        foreign = [e.rider.branch for e in entries if not e.own]
        if foreign:
            try:
                await fetch_published(run.services.merges.git, self._team.remote, foreign)
            except CouncilError as exc:  # each rider's own look below says what it lacks
                log.warning("cannot fetch the team's ready branches: %s", exc)
        riders = {e.rider.task_id: e for e in entries}
        outcomes = await run.services.merges.land_now(
            [e.rider for e in entries], lambda intent: self._fence(riders, intent)
        )
        for entry, outcome in zip(entries, outcomes, strict=True):
            if isinstance(outcome, MergeResult) and outcome.landed:
                self._seen(outcome.base_after)
            if entry.own:
                waiter = self._waiting.get(entry.rider.task_id)
                if waiter is not None:
                    waiter.settle(outcome)
                await self._drop(entry.record)  # read: before the lock goes, no train boards it
                continue
            await self._answer(entry, outcome)

    def _entry(self, record: KeyedRecord) -> _Entry | None:
        """A ready record as a rider, checked; None (said) when it is not one."""
        data = record.data
        try:
            task_id = check_id(record.key, "task id")
            tip, token, holder = data.get("tip"), data.get("token"), data.get("holder")
            if not is_commit_id(tip):
                raise ValueError(f"tip {tip!r} is not a commit id")
            if not isinstance(token, int) or isinstance(token, bool) or token <= 0:
                raise ValueError(f"token {token!r} is not a fencing token")
            if not isinstance(holder, str) or not holder:
                raise ValueError(f"holder {holder!r} is not a workstation")
            branch = data.get("branch")
            if not isinstance(branch, str) or not branch.startswith(f"council/{task_id}/"):
                raise ValueError(f"branch {branch!r} is not a session's branch of {task_id}")
            session = check_id(str(data.get("worktree_session", "")), "worktree session")
            rider = Rider(session, task_id, branch, tip)
        except (CouncilError, ValueError) as exc:
            log.warning(
                "team train: record %s/%s is not a ready branch: %s", NAMESPACE, record.key, exc
            )
            return None
        waiter = self._waiting.get(task_id)
        own = (
            holder == self._run.holder
            and waiter is not None
            and waiter.tip == tip
            and waiter.attempt.token == token
        )
        return _Entry(record, rider, token, holder, own)

    async def _fence(self, riders: Mapping[str, _Entry], intent: PushIntent) -> None:
        """A car is about to be pushed (module doc, "Fenced"); raising takes it off."""
        entry = riders[intent.task_id]
        if entry.own:
            await self._own_fence.before_push(intent)
            return
        if intent.branch_tip != entry.rider.tip:  # never: the rider is the commit itself
            raise StaleClaim(f"tasks/{intent.task_id}", entry.token, None)
        run = self._run
        store = run.services.store
        try:
            await store.renew_claim(
                intent.task_id, entry.token, run.services.config.scheduler.stale_threshold
            )
        except StaleClaim:
            await run.events.emit(
                MergeFenced(task_id=intent.task_id, token=entry.token, base=intent.base)
            )
            raise
        await store.put_record(
            WRITE_AHEAD,
            intent.task_id,
            {
                "state": "prepared",
                "base": intent.base,
                "merge_commit": intent.merge_commit,
                "branch_tip": intent.branch_tip,
                "token": entry.token,
                "holder": run.holder,  # the lander
                "owner": entry.holder,
                "attempt": intent.attempt,
            },
        )

    async def _drop(self, record: KeyedRecord) -> None:
        try:
            await self._run.services.store.delete_record(NAMESPACE, record.key, record.version)
        except StateError as exc:  # changed meanwhile, or unreachable: the owner looks again
            log.debug("cannot remove the team train's record of %s: %s", record.key, exc)

    async def _answer(self, entry: _Entry, outcome: MergeResult | Exception) -> None:
        """Write a teammate's answer over its ready record (module doc, "Answers")."""
        data: dict[str, Any] = dict(entry.record.data) | {"by": self._run.holder}
        if isinstance(outcome, MergeResult):
            data["state"] = "conflict" if outcome.status is MergeStatus.CONFLICT else "landed"
            data["result"] = result_data(outcome)
        elif isinstance(outcome, SecretInHistory):
            data["state"] = "refused"
            data["kind"] = "credential" if isinstance(outcome, CredentialInWork) else "secret"
            data["findings"] = [masked(f) for f in outcome.findings[:SHOWN]]
        else:
            data["state"] = "returned"
            data["error"] = masked(str(outcome))
        try:
            await self._run.services.store.put_record(
                NAMESPACE, entry.record.key, data, entry.record.version, ttl=_KEEP
            )
        except VersionConflict:
            pass  # its owner took it back, or a newer attempt asks: that one is answered anew
        except StateError as exc:
            log.warning("cannot answer task %s's owner: %s", entry.record.key, exc)
