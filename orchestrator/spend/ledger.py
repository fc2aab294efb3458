"""The ledger: one record per CLI call, in the state store (both backends), so a team sees one.

A call's record is written twice: **opened** before its CLI starts (what it is: task, phase,
attempt, council candidate, adapter, account, and its forecast) and **closed** when the CLI
has ended (its tokens, model, cost and outcome). Each record has a key of its own, made once
per call, and is created only if absent (``expected_version=0``), so a call is never counted
twice, also when its write is retried after a lost answer or the run is resumed. A call whose
record stayed open (the orchestrator died while its CLI ran, or it is running now on another
workstation) counts at its forecast: it was started, and may have spent that much.

Failed, cancelled and killed calls are recorded like any other: what they spent is spent.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from datetime import datetime
from typing import TypeVar

from pydantic import BaseModel, ConfigDict

from orchestrator.errors import VersionConflict
from orchestrator.safety.crashpoints import crash_point
from orchestrator.state.protocol import StateStore
from orchestrator.state.transactions import UpdateTask

__all__ = ["NAMESPACE", "Ledger", "LedgerEntry", "new_call_key"]

NAMESPACE = "ledger"

NO_PRICE = "none"


class LedgerEntry(BaseModel):
    """One CLI call: what it was, and once it ended, what it spent."""

    model_config = ConfigDict(frozen=True)

    call: str  # the record's key
    session_id: str
    task: str  # the task budgets count it to: a council task for its candidates and judge
    candidate: str | None = None  # the council candidate's own task id (``t1.c2``)
    phase: str
    attempt: int = 1
    adapter: str
    account: str = ""
    model: str | None = None
    started_at: datetime
    ended_at: datetime | None = None  # None: open (running, or killed with the orchestrator)
    outcome: str | None = None  # the CLI outcome's kind
    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    cost_usd: float | None = None
    cost_source: str = NO_PRICE  # "cli" (it said), "built-in <date>", "prices.<model>", "none"
    forecast_usd: float | None = None
    forecast_tokens: int | None = None
    # The file its CLI's output went to, under the run's log directory (its name only): what
    # closes the call from the CLI's own words when its orchestrator died first (``settle``).
    log: str | None = None
    host: str = ""  # the machine its orchestrator ran on (its log is there)

    @property
    def open(self) -> bool:
        return self.ended_at is None

    @property
    def tokens(self) -> int:
        return (
            self.input_tokens
            + self.output_tokens
            + self.cache_read_tokens
            + self.cache_write_tokens
        )

    @property
    def counted_usd(self) -> float:
        """What budgets count: the cost, or the forecast while open (unpriced: 0)."""
        if self.open:
            return self.forecast_usd or 0.0
        return self.cost_usd or 0.0

    @property
    def counted_tokens(self) -> int:
        if self.open:
            return self.forecast_tokens or 0
        return self.tokens

    @property
    def priced(self) -> bool:
        return self.cost_usd is not None


def new_call_key() -> str:
    return f"call-{secrets.token_hex(12)}"


T = TypeVar("T")


def _nothing() -> None:
    return None


class Ledger:
    """The ledger's records in ``store``."""

    def __init__(self, store: StateStore) -> None:
        self._store = store
        self._versions: dict[str, int] = {}

    async def opened(self, entry: LedgerEntry) -> None:
        """Record a call about to start (created once: a retried write finds it there)."""
        await self.opened_then(entry, _nothing)

    async def opened_then(
        self, entry: LedgerEntry, then: Callable[[], T], task: UpdateTask | None = None
    ) -> T:
        """``opened``, with ``then()`` (blocking work just before the call's CLI starts) run
        first in the write's own worker-thread call (``StateStore.put_made_record``): what it
        raises writes nothing. Its answer is given back even when the write's answer was
        lost and the record found written (what a retried write finds). With ``task``: that
        task's update written after the record, in the same store call
        (``put_made_record_and_task``; refused, nothing is written)."""
        data = entry.model_dump(mode="json")
        made: list[T] = []

        def make() -> tuple[dict[str, object], None]:
            made.append(then())
            return data, None

        try:
            if task is None:
                record, _ = await self._store.put_made_record(
                    NAMESPACE, entry.call, make, expected_version=0
                )
            else:
                record, _, _ = await self._store.put_made_record_and_task(
                    NAMESPACE,
                    entry.call,
                    make,
                    task.task_id,
                    task.updates,
                    task.expected_version,
                    fencing_token=task.fencing_token,
                    record_version=0,
                )
        except VersionConflict:
            current = await self._store.get_record(NAMESPACE, entry.call)
            if current is None or current.data != data or not made:
                raise  # (every store runs ``make`` before its version check: made it is)
            record = current
        self._versions[entry.call] = record.version
        crash_point("ledger.opened", entry.call)
        return made[0]

    async def closed(self, entry: LedgerEntry) -> None:
        """Record what the call spent, over its open record (once: a second close, or one
        after a lost answer, changes nothing)."""
        await self.closed_then(entry, _nothing)

    async def closed_then(self, entry: LedgerEntry, then: Callable[[], T]) -> T:
        """``closed``, with ``then()`` (blocking work just after the call's CLI is gone) run
        first in the write's own worker-thread call: what it raises writes nothing (the call
        stays open, counted at its forecast, as one whose orchestrator died)."""
        data = entry.model_dump(mode="json")
        # Kept until the close is written: a close that failed (its work raised, the store
        # refused it) is made again over the same open record.
        version = self._versions.get(entry.call, 0)
        made: list[T] = []

        def make() -> tuple[dict[str, object], None]:
            made.append(then())
            return data, None

        try:
            await self._store.put_made_record(NAMESPACE, entry.call, make, expected_version=version)
        except VersionConflict:
            current = await self._store.get_record(NAMESPACE, entry.call)
            if current is None or current.data.get("ended_at") is None or not made:
                raise
            # Closed already: this close's answer was lost and it was retried.
        self._versions.pop(entry.call, None)
        crash_point("ledger.closed", entry.call)
        return made[0]

    async def settled(self, entry: LedgerEntry) -> bool:
        """Close a call another process opened (its orchestrator died before closing it):
        written over the open record as read now, only while it is still open. False when it
        was closed meanwhile (or is gone): nothing written."""
        current = await self._store.get_record(NAMESPACE, entry.call)
        if current is None or current.data.get("ended_at") is not None:
            return False
        data = entry.model_dump(mode="json")
        try:
            await self._store.put_record(
                NAMESPACE, entry.call, data, expected_version=current.version
            )
        except VersionConflict:
            return False  # closed by someone else between the read and the write
        return True

    async def entries(self, session_id: str | None = None) -> list[LedgerEntry]:
        """Every call recorded (of ``session_id``'s run only, when given), oldest first."""
        found = []
        for record in await self._store.list_records(NAMESPACE):
            try:
                entry = LedgerEntry.model_validate(record.data)
            except ValueError:
                continue  # not a ledger record this version knows: left out, not guessed
            if session_id is None or entry.session_id == session_id:
                found.append(entry)
        found.sort(key=lambda entry: (entry.started_at, entry.call))
        return found
