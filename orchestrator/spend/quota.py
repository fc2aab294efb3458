"""Quota admission: whether a CLI call can be started on an adapter now, or only after a known
reset. Three things are known of a quota, and each holds a call back until its reset:

- **a rate limit hit** (a 429 or a usage-limit message with its reset time, from any task of
  the run: the scheduler's parks) holds every new call on that adapter until it lifts;
- **a quota the CLI reported** (claude's ``rate_limit_event``: how much of a window is used and
  when it resets) at or above ``rate_limits.hold_at`` holds new calls until that reset: a call
  started then would be rate limited mid-phase and parked;
- **a quota the config states** (``rate_limits.quotas.<adapter>``: tokens, usd or calls per
  window) is counted from the ledger over the last window: a call whose forecast does not fit
  waits until enough of the window's earlier calls have left it. A call too large to fit an
  empty window is started once the window is empty (it can never fit better).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from orchestrator.config.budgets import QuotaConfig
from orchestrator.spend.budgets import Forecast
from orchestrator.spend.ledger import LedgerEntry

__all__ = ["QuotaHold", "Reported", "configured_wait"]


@dataclass(frozen=True)
class Reported:
    """What a CLI last said of its quota."""

    utilization: float  # 0..1; 1.0 for a limit hit
    resets_at: datetime
    what: str  # "five_hour limit 97 % used"


@dataclass(frozen=True)
class QuotaHold:
    until: datetime
    reason: str


def configured_wait(
    entries: Iterable[LedgerEntry],
    adapter: str,
    quota: QuotaConfig,
    coming: Forecast,
    now: datetime,
) -> datetime | None:
    """When a call with forecast ``coming`` fits ``quota`` on ``adapter``: None for now."""
    window = timedelta(seconds=quota.per)
    inside = sorted(
        (e for e in entries if e.adapter == adapter and e.started_at > now - window),
        key=lambda e: e.started_at,
    )
    usd = sum(e.counted_usd for e in inside)
    tokens = sum(e.counted_tokens for e in inside)
    calls = len(inside)

    def fits() -> bool:
        return (
            (quota.usd is None or usd + coming.usd <= quota.usd)
            and (quota.tokens is None or tokens + coming.tokens <= quota.tokens)
            and (quota.calls is None or calls + 1 <= quota.calls)
        )

    if not inside or fits():
        return None
    for entry in inside:
        usd -= entry.counted_usd
        tokens -= entry.counted_tokens
        calls -= 1
        if calls == 0 or fits():
            return entry.started_at + window
    return None  # unreachable: an empty window is admitted
