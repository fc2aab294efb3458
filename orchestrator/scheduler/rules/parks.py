"""The park policy: how long a rate-limited task waits, and when waiting has gone on too long.

A rate limit is not a failure (it lifts by itself), so a rate-limited attempt uses up no retry:
the task is **parked** on its adapter and resumes that CLI's conversation once the park lifts.
A limit that never lifts must still end, so parks are bounded (``rate_limits:`` in the run
config, ``RateLimitConfig``):

- **How long**: the reset time the CLI reported, when it gave one (a quota's reset, a
  ``retry-after``). Without one, the task's n-th park lasts ``backoff_initial *
  multiplier ** (n - 1)``, capped at ``backoff_max`` (30 s, 1 min, 2 min ... 30 min by
  default): API-key 429s rarely say when to come back, and relaunching the CLI every second
  or two only hits the limit again.
- **Budget per task**: at most ``max_parks`` parks; the next rate limit ends it.
- **Budget per adapter**: an adapter rate limited without a break for longer than
  ``max_parked_time`` (counted from its first park in a row, whichever task it was) is given
  up on: a park that would lift later than that is not taken.

A task over budget ends ``failed`` with outcome ``rate_limited`` and a message naming the
adapter, how many parks, and for how long. What the policy needs survives a resume: the task
keeps its park count and when its adapter's rate limits began in its metadata, beside when
its park lifts and its adapter (``task_meta.ParkMeta``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from orchestrator.config.durations import format_duration
from orchestrator.config.sections import RateLimitConfig
from orchestrator.retry import GiveUp

__all__ = ["Park", "ParkPolicy"]


@dataclass(frozen=True)
class Park:
    """Leave the task (and its adapter) alone until ``until``."""

    until: datetime
    park: int  # the task's park number: 1 for its first
    since: datetime  # when its adapter's run of rate limits began


class ParkPolicy:
    """Park decisions for one run (see the module docstring)."""

    def __init__(self, config: RateLimitConfig | None = None) -> None:
        self.config = config or RateLimitConfig()

    def backoff(self, park: int) -> float:
        """Seconds the task's park number ``park`` lasts when the CLI gave no reset time."""
        cfg = self.config
        exponent = max(park, 1) - 1
        # Beyond the cap the exact power does not matter, and a huge one would overflow.
        if cfg.multiplier > 1 and exponent * math.log2(cfg.multiplier) > 64:
            return cfg.backoff_max
        return float(min(cfg.backoff_initial * cfg.multiplier**exponent, cfg.backoff_max))

    def decide(
        self,
        *,
        adapter: str,
        parks: int,
        since: datetime | None,
        reset_at: datetime | None,
        message: str,
        now: datetime,
    ) -> Park | GiveUp:
        """Park the task once more, or end it.

        ``parks`` is how many times the task was parked before; ``since`` when ``adapter``'s
        rate limits began (None: this is the first); ``reset_at`` the CLI's reset time, if
        it gave one; ``message`` the CLI's own words, quoted when the task ends."""
        cfg = self.config
        park = parks + 1
        began = since if since is not None and since <= now else now
        last = f"; last error: {message}" if message else ""
        if park > cfg.max_parks:
            return GiveUp(
                f"rate limited: {adapter} was still rate limited after {parks} parks over "
                f"{_span(now - began)} (rate_limits.max_parks is {cfg.max_parks}){last}"
            )
        wait = timedelta(seconds=self.backoff(park))
        until = max(reset_at if reset_at is not None else now + wait, now)
        budget = timedelta(seconds=cfg.max_parked_time)
        if until - began > budget:
            return GiveUp(
                f"rate limited: {adapter} has been rate limited for {_span(now - began)} "
                f"(since {_clock(began)}, {parks} parks of this task); waiting until "
                f"{_clock(until)} would pass rate_limits.max_parked_time "
                f"({format_duration(cfg.max_parked_time)}){last}"
            )
        return Park(until=until, park=park, since=began)


def _span(delta: timedelta) -> str:
    seconds = max(delta.total_seconds(), 0.0)
    return format_duration(round(seconds, 1) if seconds < 60 else round(seconds))


def _clock(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
