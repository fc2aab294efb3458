"""The task's phase records in the state store, written by one attempt under its claim.

``PhaseBook`` keeps ``TaskState.phases`` (``name -> PhaseRecord``) and ``current_phase`` up to
date through ``update_task_state(..., fencing_token=claim_token)``: an attempt whose lease
lapsed gets ``StaleClaim`` on its next write and can change nothing. Only the workflow of the
claim holder writes these fields, so each write replaces the whole ``phases`` map from the
book's copy, without a read-modify-write race against the scheduler (which writes other
fields: status, claim, attempt).

A record goes ``running`` (``started_at``, ``attempt`` + 1, ``result`` holding the round and
the branch) → ``completed`` (``outcome``, ``native_session_id``, ``handoff_sha256``, the
result's facts) or ``failed`` (``outcome``, ``error``, and the CLI's ``native_session_id`` so
the next attempt can continue that conversation). ``send_back`` returns a completed build to
``pending`` for the next review round. Every transition is a durable write: a start records
the commit the phase starts from, which a resumed run needs. Each transition is also an
event through the store: ``phase.started``, ``phase.completed``, ``phase.failed``,
``phase.sent_back``, also handed to ``on_event`` (the scheduler's live view learns the phase
without waiting for CLI output).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from orchestrator.events import Event
from orchestrator.events.phases import (
    PhaseCompleted,
    PhaseFailed,
    PhaseSentBack,
    PhaseStarted,
    PhaseStopped,
)
from orchestrator.models import KeyedRecord, PhaseRecord, PhaseStatus, utcnow
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.carried import Carrier
from orchestrator.state.carried_in_turn import carried_in_turn
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import UpdateTask

__all__ = [
    "PHASE_COMPLETED",
    "PHASE_FAILED",
    "PHASE_SENT_BACK",
    "PHASE_STARTED",
    "KeptRecord",
    "PhaseBook",
]

log = logging.getLogger(__name__)

PHASE_STARTED = "phase.started"
PHASE_COMPLETED = "phase.completed"
PHASE_FAILED = "phase.failed"
PHASE_STOPPED = "phase.stopped"
PHASE_SENT_BACK = "phase.sent_back"

_MODELS: dict[
    str, type[PhaseStarted | PhaseCompleted | PhaseFailed | PhaseStopped | PhaseSentBack]
] = {
    PHASE_STARTED: PhaseStarted,
    PHASE_COMPLETED: PhaseCompleted,
    PHASE_FAILED: PhaseFailed,
    PHASE_STOPPED: PhaseStopped,
    PHASE_SENT_BACK: PhaseSentBack,
}


class KeptRecord(Protocol):
    """A keyed record written with a phase's record, before it (``PhaseBook.complete``):
    ``make`` (blocking) gives its data."""

    @property
    def namespace(self) -> str: ...

    @property
    def key(self) -> str: ...

    @property
    def make(self) -> Callable[[], tuple[Mapping[str, Any], object]]: ...


class PhaseBook:
    def __init__(
        self,
        store: StateStore,
        task_id: str,
        claim_token: int,
        session_id: str,
        on_event: Callable[[Event], None] | None = None,
        fields: dict[str, Any] | None = None,
    ) -> None:
        self.store = store
        self.on_event = on_event
        self.task_id = task_id
        self.claim_token = claim_token
        self.session_id = session_id
        self.fields = dict(fields or {})  # written along with every record (branch, worktree)
        self.records: dict[str, PhaseRecord] = {}

    async def load(self, known: Mapping[str, PhaseRecord] | None = None) -> None:
        """The task's phase records: ``known`` when the caller has them as its claim found
        them (no read), else read from the store."""
        if known is not None:
            self.records = dict(known)
            return
        state = await self.store.get_task_state(self.task_id)
        self.records = dict(state.phases) if state is not None else {}

    def get(self, name: str) -> PhaseRecord | None:
        return self.records.get(name)

    async def start(self, name: str, adapter: str, result: dict[str, Any]) -> PhaseRecord:
        record = self._running(name, adapter, result)
        # Durable: it names the commit the phase starts from (``start_commit``), which a
        # resumed run needs to put back what a cut-off phase left (``workflow``).
        await self._put(record, current=name)
        await self._emit(PHASE_STARTED, record, round=result.get("round"))
        return record

    def starting(self, name: str, adapter: str, result: dict[str, Any]) -> UpdateTask:
        """``start``'s write, handed to the caller to carry in a store call of its own (the
        phase's ledger record's open: durable before the CLI starts), then ``started``. The
        book holds the record from now on: a failure before the write records it failed."""
        record = self._running(name, adapter, result)
        phases = {**self.records, name: record}
        self.records = phases
        return UpdateTask(
            self.task_id,
            {**self.fields, "phases": phases, "current_phase": name},
            fencing_token=self.claim_token,
        )

    async def started(self, name: str) -> PhaseRecord:
        """``starting``'s write was made: said as ``start`` says it."""
        record = self._require(name)
        await self._emit(PHASE_STARTED, record, round=record.result.get("round"))
        return record

    def _running(self, name: str, adapter: str, result: dict[str, Any]) -> PhaseRecord:
        old = self.records.get(name)
        return PhaseRecord(
            name=name,
            status=PhaseStatus.RUNNING,
            attempt=(old.attempt if old else 0) + 1,
            adapter=adapter,
            native_session_id=old.native_session_id if old else None,
            started_at=utcnow(),
            result=result,
        )

    async def complete(
        self,
        name: str,
        *,
        native_session_id: str | None,
        handoff_sha256: str,
        result: dict[str, Any],
        kept: KeptRecord | None = None,
        carried: Sequence[Carrier] = (),
    ) -> PhaseRecord:
        """The phase recorded completed; with ``kept`` (its handoff's keyed record, whose
        ``make`` writes its file), that record first, in the same store call
        (``put_made_record_and_task``): the handoff is kept before the phase is recorded
        complete, so a crash between them (or before both) runs the phase again. With
        ``carried`` (other rooms' records: the session's context, with the files a build
        changed; the radar's first sighting), those after both, in the same call where the
        store makes one (``put_made_record_and_task_carrying``), as their own calls after
        them would."""
        record = self._require(name).model_copy(
            update={
                "status": PhaseStatus.COMPLETED,
                "finished_at": utcnow(),
                "outcome": "succeeded",
                "error": None,
                "native_session_id": native_session_id,
                "handoff_sha256": handoff_sha256,
                "result": {**self._require(name).result, **result},
            }
        )
        await self._put(record, current=name, kept=kept, carried=carried)
        crash_point("phase.completed")
        await self._emit(PHASE_COMPLETED, record)
        return record

    async def fail(
        self, name: str, *, outcome: str, error: str, native_session_id: str | None
    ) -> PhaseRecord:
        old = self._require(name)
        record = old.model_copy(
            update={
                "status": PhaseStatus.FAILED,
                "finished_at": utcnow(),
                "outcome": outcome,
                "error": error[:4000],
                "native_session_id": native_session_id or old.native_session_id,
                "handoff_sha256": None,
            }
        )
        await self._put(record, current=name)
        # Cut short by the user (a stop, a kill, a cancel request): said as such, not a failure.
        kind = PHASE_STOPPED if outcome == "cancelled" else PHASE_FAILED
        await self._emit(kind, record, error=error[:500])
        return record

    async def send_back(self, name: str, result: dict[str, Any]) -> PhaseRecord:
        """Make completed phase ``name`` due again (the next review round)."""
        old = self.records.get(name) or PhaseRecord(name=name)
        record = old.model_copy(
            update={
                "status": PhaseStatus.PENDING,
                "finished_at": None,
                "handoff_sha256": None,
                "result": {**old.result, **result},
            }
        )
        await self._put(record, current=name)
        await self._emit(PHASE_SENT_BACK, record, round=result.get("round"))
        return record

    def _require(self, name: str) -> PhaseRecord:
        record = self.records.get(name)
        if record is None:
            raise KeyError(f"phase {name!r} of task {self.task_id!r} was never started")
        return record

    async def _put(
        self,
        record: PhaseRecord,
        *,
        current: str,
        durable: bool = True,
        kept: KeptRecord | None = None,
        carried: Sequence[Carrier] = (),
    ) -> None:
        phases = {**self.records, record.name: record}
        updates = {**self.fields, "phases": phases, "current_phase": current}
        written: list[KeyedRecord | None] = []
        if kept is not None and carried:
            *_, written = await self.store.put_made_record_and_task_carrying(
                kept.namespace,
                kept.key,
                kept.make,
                self.task_id,
                updates,
                fencing_token=self.claim_token,
                carried=[c.put for c in carried],
            )
        elif kept is not None:
            await self.store.put_made_record_and_task(
                kept.namespace,
                kept.key,
                kept.make,
                self.task_id,
                updates,
                fencing_token=self.claim_token,
            )
        else:
            await self.store.update_task_state(
                self.task_id, updates, fencing_token=self.claim_token, durable=durable
            )
        self.records = phases
        if carried:  # carried above, else written after, as their own calls
            if not written:
                written = await carried_in_turn(self.store, [c.put for c in carried])
            for carrier, put in zip(carried, written, strict=True):
                carrier.done(put)

    async def _emit(self, event_type: str, record: PhaseRecord, **extra: Any) -> None:
        fields: dict[str, Any] = {
            "task_id": self.task_id,
            "phase": record.name,
            "adapter": record.adapter,
            "session": self.session_id,
            "status": str(record.status),
            "attempt": record.attempt,
        }
        if record.outcome is not None:
            fields["outcome"] = record.outcome
        fields.update({k: v for k, v in extra.items() if v is not None})
        event = _MODELS[event_type](**fields)
        await self.store.emit(event)
        if self.on_event is not None:
            try:
                self.on_event(event)
            except Exception:  # a listener must never break the attempt
                log.exception("on_event listener failed on %s; ignored", event_type)
