"""The run config's ``budgets:``, ``prices:`` and ``rate_limits.quotas``: what a run may spend,
what a model costs, and what a CLI's quota allows (``orchestrator.spend`` applies them).

```yaml
budgets:
  run: {usd: 20}
  task: {usd: 2, tokens: 2_000_000}
  adapters: {claude: {usd: 10, per: day}}
  on_exceed: pause          # pause | stop | ask
  estimate: {usd: 0.25}     # a call's forecast until the ledger has its phase on its adapter
prices:                     # USD per million tokens, over the built-in dated table
  my-model: {input: 1.0, output: 4.0, cache_read: 0.1, cache_write: 1.25}
```
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import (
    ConfigDict,
    Field,
    NonNegativeFloat,
    NonNegativeInt,
    PositiveFloat,
    PositiveInt,
    model_validator,
)

from orchestrator.config.durations import PositiveDuration
from orchestrator.config.fields import Id, Section
from orchestrator.money import dollars

__all__ = ["BudgetsConfig", "Limit", "PriceConfig", "QuotaConfig"]


class Limit(Section):
    """At most this much: dollars, tokens (input, output and cache, all counted), or both."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    usd: PositiveFloat | None = Field(default=None, description="US dollars")
    tokens: PositiveInt | None = Field(
        default=None, description="tokens: input + output + cache read + cache write"
    )
    per: Literal["run", "day"] = Field(
        default="run",
        description="run: over the run (resumes included); day: over each UTC day, across runs",
    )

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.usd is None and self.tokens is None:
            raise ValueError("give usd, tokens or both")
        return self

    def said(self) -> str:
        parts = [dollars(self.usd) if self.usd is not None else "", _tokens(self.tokens)]
        text = " and ".join(part for part in parts if part)
        return f"{text} a day" if self.per == "day" else text


class BudgetsConfig(Section):
    """What the run may spend (``orchestrator.spend.budgets``)."""

    run: Limit | None = Field(default=None, description="the whole run, every CLI call")
    task: Limit | None = Field(
        default=None,
        description="each task, every attempt, failed or not (a council task: every candidate "
        "and the judge)",
    )
    adapters: dict[Id, Limit] = Field(
        default_factory=dict, description="each configured adapter (an account's spend)"
    )
    on_exceed: Literal["pause", "stop", "ask"] = Field(
        default="pause",
        description="pause: nothing new starts in the spent scope, the rest goes on; stop: "
        "the run stops, resumable; ask: pause, and under `council serve` ask on the issue",
    )
    estimate: Limit | None = Field(
        default=None,
        description="a call's forecast before the ledger knows that phase on that adapter "
        "(then the median of what it cost)",
    )

    @property
    def any(self) -> bool:
        return self.run is not None or self.task is not None or bool(self.adapters)


class PriceConfig(Section):
    """A model's price in US dollars per million tokens."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    input: NonNegativeFloat
    output: NonNegativeFloat
    cache_read: NonNegativeFloat | None = Field(default=None, description="default: input's")
    cache_write: NonNegativeFloat | None = Field(default=None, description="default: input's")


class QuotaConfig(Section):
    """A CLI account's known quota: at most this much in any window of ``per``."""

    model_config = ConfigDict(defer_build=True)  # seldom validated: built on first use

    tokens: PositiveInt | None = None
    usd: PositiveFloat | None = None
    calls: NonNegativeInt | None = Field(default=None, description="CLI calls started")
    per: PositiveDuration = Field(description="the window, such as 5h or 1d")

    @model_validator(mode="after")
    def _something(self) -> Self:
        if self.tokens is None and self.usd is None and self.calls is None:
            raise ValueError("give tokens, usd or calls")
        return self


def _tokens(count: int | None) -> str:
    if count is None:
        return ""
    if count >= 1_000_000:
        return f"{count / 1_000_000:g}M tokens"
    if count >= 1_000:
        return f"{count / 1_000:g}k tokens"
    return f"{count} tokens"
