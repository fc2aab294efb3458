"""The quota holds of a run's calls, for the spend gate: why a call on an adapter waits for a
quota's reset, and until when (``quota`` says the three things known of a quota).

``QuotaWatch`` keeps what each adapter's CLI last said of its quota (``heard``, from the
events of a call that ended) and asks the configured windows of the gate's tally; a park the
scheduler made on a rate limit (``parked_until``) holds too. Of several holds the latest
reset wins.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta

from orchestrator.adapter import AgentEvent, EventKind
from orchestrator.config.sections import RateLimitConfig
from orchestrator.spend.budgets import Forecast
from orchestrator.spend.quota import QuotaHold, Reported, configured_wait
from orchestrator.spend.tally import Tally

__all__ = ["QuotaWatch"]


class QuotaWatch:
    """The quota holds of one gate's calls (module doc)."""

    def __init__(
        self,
        limits: RateLimitConfig,
        parked_until: Callable[[str], datetime | None] = lambda adapter: None,
    ) -> None:
        self._limits = limits
        self._parked_until = parked_until
        self._reported: dict[str, Reported] = {}  # adapter -> its CLI's last quota report

    def hold(
        self, adapter: str, coming: Callable[[], Forecast], tally: Tally, now: datetime
    ) -> QuotaHold | None:
        """Why a call on ``adapter`` (its forecast ``coming()``) waits, or None."""
        holds: list[QuotaHold] = []
        said = self._reported.get(adapter)
        hold_at = self._limits.hold_at
        if said is not None and said.resets_at > now and said.utilization >= hold_at:
            holds.append(QuotaHold(said.resets_at, f"{adapter}'s {said.what}"))
        quota = self._limits.quotas.get(adapter)
        if quota is not None:
            forecast, since = coming(), now - timedelta(seconds=quota.per)
            usd, tokens, calls = tally.window(adapter, since)
            fits = (
                (quota.usd is None or usd + forecast.usd <= quota.usd)
                and (quota.tokens is None or tokens + forecast.tokens <= quota.tokens)
                and (quota.calls is None or calls + 1 <= quota.calls)
            )
            recent = [] if fits else tally.since(adapter, since)
            wait = configured_wait(recent, adapter, quota, forecast, now) if recent else None
            if wait is not None:
                holds.append(QuotaHold(wait, f"rate_limits.quotas.{adapter} is used up"))
        # Last: a park this gate's own quota hold made (``Spending.hold``) says that quota.
        parked = self._parked_until(adapter)
        if parked is not None and parked > now:
            holds.append(QuotaHold(parked, f"{adapter} is parked on a rate limit"))
        if not holds:
            return None
        return max(holds, key=lambda hold: hold.until)  # the first of the latest

    def heard(self, adapter: str, events: Sequence[AgentEvent]) -> None:
        """Keep what ``adapter``'s CLI said of its quota in ``events``."""
        for event in events:
            if event.reset_at is None:
                continue
            if event.kind == EventKind.RATE_LIMITED:
                self._reported[adapter] = Reported(1.0, event.reset_at, "limit was reached")
            elif event.kind == EventKind.QUOTA:
                share = event.data.get("utilization")
                if isinstance(share, int | float):
                    what = f"{event.text or 'quota'} ({share:.0%} used)"
                    self._reported[adapter] = Reported(float(share), event.reset_at, what)
