"""A run's budget reserved atomically in the store: one fund record per run session, shared by
every process and workstation that runs it.

The gate checks a call against its own running sums (``tally``), which another workstation's
calls reach only when it reads the ledger again. Two workstations starting a call in the same
second would each find room for it. So before a call's ledger record is opened, its forecast is
reserved here, against every budget scope it counts to (``budgets.scopes_for``), in one
compare-and-set of the session's fund record (``FUNDS``; ``put_record(expected_version=...)``,
which both backends make atomic across processes and machines): the check "spent + reserved +
this forecast fits the limit" and the reservation are one write, retried when another process
wrote first. One record per session rather than one per scope: a call counts to up to three
scopes and must take room in all of them or in none, which one record's compare-and-set does
without a transaction across records; the protocol offers no row lock.

The fund keeps, per scope key (``run``, ``task:<id>``, ``adapter:<name>``, each also per UTC
day as ``<key>@<date>``), what closed calls spent (``spent``), and each running call's
reservation (``held``: its forecast, its scope keys, its holder). Limits are not kept: they are
the caller's, raised limits (``raising``) included. A call's close (``settle``) replaces its
reservation by its real cost in one write; a call refused or never started is released.

A reservation names its holder: a gate, which keeps a lease record (``HOLDERS``, written with a
``ttl`` and renewed while it runs, as a workstation's presence is) that says which process it
is. A holder is dead when its lease record has lapsed, or when the caller's ``alive`` says its
process has ended (at once on the same machine). A dead holder's reservations are settled the
way its ledger record says: none (the call never started: its ledger record is opened before
the CLI starts) releases it; an open one counts at its forecast, as the ledger counts it (the
call started and may have spent that much), until a late close corrects it (``lost``); a closed
one counts at its cost. Dead holders are looked for when a call does not fit, and when a run
(re)starts (``sweep``).

The budget of an adapter per day counts every run of the store (``budgets.counts_to``): that
scope is not reserved here (a fund is one run's), the gate's running sums check it as before.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from orchestrator.errors import VersionConflict
from orchestrator.spend import ledger as ledger_records
from orchestrator.spend.budgets import Exceeded, Forecast, Scope, ScopeSpend, check
from orchestrator.spend.ledger import LedgerEntry
from orchestrator.state.protocol import StateStore

__all__ = [
    "FUNDS",
    "HOLDERS",
    "Alive",
    "Fund",
    "FundView",
    "fund_keys",
    "reservable",
    "scope_key",
]

log = logging.getLogger(__name__)

FUNDS = "spend-funds"  # keyed records: session id -> the run's fund
HOLDERS = "spend-holders"  # keyed records: holder id -> the process holding reservations
LEASE = 60.0  # seconds a holder's lease record lasts unless renewed
_TRIES = 200  # compare-and-set attempts against other writers of the fund

Alive = Callable[[Mapping[str, Any]], bool | None]
"""Whether the process a holder's record describes (``who``) still runs: False when it has
surely ended, None when this process cannot tell (another machine: the lease decides)."""


def scope_key(scope: Scope, now: datetime) -> str:
    """The fund's key of ``scope`` for a call started at ``now``."""
    return f"{scope.key}@{now.date().isoformat()}" if scope.limit.per == "day" else scope.key


def reservable(scope: Scope) -> bool:
    """A scope a run's fund can hold: not an adapter's budget per day (every run's)."""
    return not (scope.kind == "adapter" and scope.limit.per == "day")


def fund_keys(entry: LedgerEntry) -> list[str]:
    """Every scope key ``entry`` counts to in its run's fund, whatever the budgets are."""
    day = entry.started_at.date().isoformat()
    keys = ["run", f"task:{entry.task}", f"adapter:{entry.adapter}"]
    return keys + [f"{key}@{day}" for key in keys]


def _as_float(value: Any, where: str) -> float:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    raise ValueError(f"{where}: expected a number, found {value!r}")


@dataclass(frozen=True)
class FundView:
    """The fund as read: what each scope key has spent and what is reserved in it."""

    spent: dict[str, tuple[float, int]]
    held: dict[str, dict[str, Any]]  # call -> {"holder", "keys", "usd", "tokens"}
    lost: dict[str, dict[str, Any]]  # call -> its forecast counted, its holder dead

    @classmethod
    def of(cls, data: Mapping[str, Any], where: str) -> FundView:
        spent: dict[str, tuple[float, int]] = {}
        for key, pair in dict(data.get("spent") or {}).items():
            if not isinstance(pair, list) or len(pair) != 2:
                raise ValueError(f"{where}: spent[{key!r}] is not [usd, tokens]: {pair!r}")
            spent[key] = (_as_float(pair[0], f"{where} spent[{key!r}]"), int(pair[1]))
        held = {k: dict(v) for k, v in dict(data.get("held") or {}).items()}
        lost = {k: dict(v) for k, v in dict(data.get("lost") or {}).items()}
        return cls(spent, held, lost)

    def as_data(self) -> dict[str, Any]:
        return {
            "spent": {key: [round(usd, 9), tokens] for key, (usd, tokens) in self.spent.items()},
            "held": self.held,
            "lost": self.lost,
        }

    def add(self, keys: Iterable[str], usd: float, tokens: int) -> None:
        for key in keys:
            was_usd, was_tokens = self.spent.get(key, (0.0, 0))
            self.spent[key] = (was_usd + usd, was_tokens + tokens)

    def counted(self, key: str) -> tuple[float, int]:
        """Spent and reserved in ``key``."""
        usd, tokens = self.spent.get(key, (0.0, 0))
        for hold in self.held.values():
            if key in hold["keys"]:
                usd += float(hold["usd"])
                tokens += int(hold["tokens"])
        return usd, tokens

    def reserved_usd(self) -> float:
        return sum(float(hold["usd"]) for hold in self.held.values())


def _amount(entry: LedgerEntry) -> tuple[float, int]:
    return entry.counted_usd, entry.counted_tokens


class Fund:
    """The fund of session ``session_id`` as one holder (a gate) sees and writes it."""

    def __init__(
        self,
        store: StateStore,
        session_id: str,
        *,
        who: Mapping[str, Any] | None = None,
        alive: Alive | None = None,
        lease: float = LEASE,
    ) -> None:
        if lease <= 0:
            raise ValueError(f"Fund lease: expected seconds above 0, found {lease!r}")
        self._store = store
        self.session_id = session_id
        self.holder = f"{session_id}.{secrets.token_hex(6)}"
        self._who = dict(who or {})
        self._alive = alive
        self._lease = lease
        self._renewed = float("-inf")

    # -- reading -------------------------------------------------------------------------------

    async def view(self) -> FundView | None:
        record = await self._store.get_record(FUNDS, self.session_id)
        return None if record is None else FundView.of(record.data, self._where)

    @property
    def _where(self) -> str:
        return f"{FUNDS}/{self.session_id}"

    # -- this holder's lease -------------------------------------------------------------------

    async def renew(self, *, force: bool = False) -> None:
        """Keep this holder's lease record alive (at most every third of the lease)."""
        now = time.monotonic()
        if not force and now - self._renewed < self._lease / 3:
            return
        data = {"session_id": self.session_id, "who": self._who}
        await self._store.put_record(HOLDERS, self.holder, data, durable=False, ttl=self._lease)
        self._renewed = now

    async def leave(self) -> None:
        """This holder is done (its run ends): its lease record goes."""
        await self._store.delete_record(HOLDERS, self.holder, durable=False)

    async def _dead(self, holder: str) -> bool:
        if holder == self.holder:
            return False
        record = await self._store.get_record(HOLDERS, holder)
        if record is None:
            return True  # its lease lapsed, or it never got one
        who = record.data.get("who")
        if self._alive is not None and isinstance(who, Mapping) and who:
            return self._alive(who) is False
        return False

    # -- writing -------------------------------------------------------------------------------

    async def reserve(self, entry: LedgerEntry, scopes: Sequence[Scope]) -> Exceeded | None:
        """Reserve ``entry``'s forecast in every scope of ``scopes`` (those ``reservable``),
        in one atomic write; the scope it does not fit in instead (nothing reserved)."""
        await self.renew()
        wanted = [scope for scope in scopes if reservable(scope)]
        coming = Forecast(entry.forecast_usd or 0.0, entry.forecast_tokens or 0, "reserved")
        swept = False
        for _ in range(_TRIES):
            record = await self._store.get_record(FUNDS, self.session_id)
            if record is None:
                fund, version = await self._seed(), 0
            else:
                fund, version = FundView.of(record.data, self._where), record.version
            over = self._misfit(fund, wanted, coming, entry.started_at)
            changed = False
            if over is not None and not swept:
                swept = True
                changed = await self._settle_dead(fund)
                if changed:
                    over = self._misfit(fund, wanted, coming, entry.started_at)
            if over is None:
                fund.held[entry.call] = {
                    "holder": self.holder,
                    "keys": fund_keys(entry),
                    "usd": coming.usd,
                    "tokens": coming.tokens,
                }
            elif not changed and version != 0:
                return over
            try:
                await self._store.put_record(
                    FUNDS, self.session_id, fund.as_data(), expected_version=version
                )
            except VersionConflict:
                continue  # another process wrote first: read again
            return over
        raise VersionConflict(self._where, _TRIES, None)

    async def settle(self, entry: LedgerEntry) -> None:
        """Replace closed call ``entry``'s reservation by what it spent (once: a call settled
        already is not counted again)."""

        def settled(fund: FundView) -> bool:
            keys = fund_keys(entry)
            if fund.held.pop(entry.call, None) is not None:
                fund.add(keys, *_amount(entry))
                return True
            lost = fund.lost.pop(entry.call, None)
            if lost is not None:  # counted at its forecast when its holder was found dead
                fund.add(lost["keys"], -float(lost["usd"]), -int(lost["tokens"]))
                fund.add(keys, *_amount(entry))
                return True
            return False

        await self._change(settled)

    async def release(self, call: str) -> None:
        """Give back ``call``'s reservation: it did not start."""
        await self._change(lambda fund: fund.held.pop(call, None) is not None)

    async def sweep(self) -> int:
        """Settle the reservations of dead holders (a run that starts or resumes); how many."""
        count = 0

        async def dead(fund: FundView) -> bool:
            nonlocal count
            before = len(fund.held)
            changed = await self._settle_dead(fund)
            count = before - len(fund.held)
            return changed

        for _ in range(_TRIES):
            record = await self._store.get_record(FUNDS, self.session_id)
            if record is None:
                return 0
            fund = FundView.of(record.data, self._where)
            if not await dead(fund):
                return 0
            try:
                await self._store.put_record(
                    FUNDS, self.session_id, fund.as_data(), expected_version=record.version
                )
            except VersionConflict:
                continue
            return count
        raise VersionConflict(self._where, _TRIES, None)

    async def _change(self, change: Callable[[FundView], bool]) -> None:
        for _ in range(_TRIES):
            record = await self._store.get_record(FUNDS, self.session_id)
            if record is None:
                return  # no fund: nothing was reserved in it
            fund = FundView.of(record.data, self._where)
            if not change(fund):
                return
            try:
                await self._store.put_record(
                    FUNDS, self.session_id, fund.as_data(), expected_version=record.version
                )
            except VersionConflict:
                continue
            return
        raise VersionConflict(self._where, _TRIES, None)

    # -- parts ---------------------------------------------------------------------------------

    @staticmethod
    def _misfit(
        fund: FundView, scopes: Sequence[Scope], coming: Forecast, now: datetime
    ) -> Exceeded | None:
        def spent_of(scope: Scope) -> ScopeSpend:
            return ScopeSpend(scope, *fund.counted(scope_key(scope, now)))

        return check(scopes, coming, spent_of)

    async def _seed(self) -> FundView:
        """A new fund from the run's ledger as it stands (calls opened before any fund)."""
        fund = FundView({}, {}, {})
        for entry in await ledger_records.Ledger(self._store).entries(self.session_id):
            keys = fund_keys(entry)
            fund.add(keys, *_amount(entry))
            if entry.open:
                usd, tokens = _amount(entry)
                fund.lost[entry.call] = {"keys": keys, "usd": usd, "tokens": tokens}
        return fund

    async def _settle_dead(self, fund: FundView) -> bool:
        """Settle, in ``fund``, the reservations whose holder is dead, by their ledger record;
        True when any was."""
        verdicts: dict[str, bool] = {}
        changed = False
        for call, hold in list(fund.held.items()):
            holder = str(hold.get("holder", ""))
            if holder not in verdicts:
                verdicts[holder] = await self._dead(holder)
            if not verdicts[holder]:
                continue
            changed = True
            del fund.held[call]
            record = await self._store.get_record(ledger_records.NAMESPACE, call)
            if record is None:
                log.info(
                    "released the reservation of call %s: its holder died before it started", call
                )
                continue
            entry = LedgerEntry.model_validate(record.data)
            fund.add(hold["keys"], *_amount(entry))
            if entry.open:
                usd, tokens = _amount(entry)
                fund.lost[call] = {"keys": hold["keys"], "usd": usd, "tokens": tokens}
        return changed
