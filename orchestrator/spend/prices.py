"""What a model costs: a dated built-in table of list prices, the run config's ``prices:`` over it.

A CLI that reports its own cost (claude's ``total_cost_usd``, aider's cost line, opencode's
step cost) is taken at its word; for the others (codex, gemini, qwen, ollama and plugins'
CLIs) the call's tokens are priced here. A model found in neither table is counted in tokens
and flagged ``no price``: never guessed.

A model is found by its id as the CLI or the config names it, without a provider's prefix
(``anthropic/claude-sonnet-4-5`` is ``claude-sonnet-4-5``), exactly or as a listed id followed by
a snapshot date, ``-latest`` or a tag (``claude-sonnet-4-5-20250929``, ``qwen3-coder-plus:1``);
never as a neighbouring version (``claude-opus-4-8`` is not ``claude-opus-4``: its price may
differ). The table is the providers' public list prices (USD per million tokens,
standard tier, prompts under 200k tokens) as of ``PRICES_AS_OF``: prices change, so a run
config can replace any of them.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TypeVar

from orchestrator.adapter import Usage
from orchestrator.config.budgets import PriceConfig

__all__ = ["BUILT_IN", "PRICES_AS_OF", "Price", "cost_of", "find_price"]

PRICES_AS_OF = "2025-11-01"

_T = TypeVar("_T")


@dataclass(frozen=True)
class Price:
    """USD per million tokens."""

    input: float
    output: float
    cache_read: float
    cache_write: float
    source: str  # "built-in 2025-11-01" or "prices.<model>"


def _p(inp: float, out: float, read: float | None = None, write: float | None = None) -> Price:
    return Price(
        inp,
        out,
        inp if read is None else read,
        inp if write is None else write,
        f"built-in {PRICES_AS_OF}",
    )


BUILT_IN: dict[str, Price] = {
    # Anthropic
    "claude-opus-4-5": _p(5.0, 25.0, 0.50, 6.25),
    "claude-opus-4-1": _p(15.0, 75.0, 1.50, 18.75),
    "claude-opus-4": _p(15.0, 75.0, 1.50, 18.75),
    "claude-sonnet-4-5": _p(3.0, 15.0, 0.30, 3.75),
    "claude-sonnet-4": _p(3.0, 15.0, 0.30, 3.75),
    "claude-3-7-sonnet": _p(3.0, 15.0, 0.30, 3.75),
    "claude-haiku-4-5": _p(1.0, 5.0, 0.10, 1.25),
    "claude-3-5-haiku": _p(0.80, 4.0, 0.08, 1.0),
    # OpenAI (cached input is the cache read; there is no cache write charge)
    "gpt-5.1-codex": _p(1.25, 10.0, 0.125, 0.0),
    "gpt-5.1": _p(1.25, 10.0, 0.125, 0.0),
    "gpt-5-codex": _p(1.25, 10.0, 0.125, 0.0),
    "gpt-5": _p(1.25, 10.0, 0.125, 0.0),
    "gpt-5-mini": _p(0.25, 2.0, 0.025, 0.0),
    "gpt-5-nano": _p(0.05, 0.40, 0.005, 0.0),
    "gpt-4.1": _p(2.0, 8.0, 0.50, 0.0),
    "gpt-4.1-mini": _p(0.40, 1.60, 0.10, 0.0),
    "o3": _p(2.0, 8.0, 0.50, 0.0),
    "o4-mini": _p(1.10, 4.40, 0.275, 0.0),
    # Google
    "gemini-2.5-pro": _p(1.25, 10.0, 0.125, 0.0),
    "gemini-2.5-flash": _p(0.30, 2.50, 0.03, 0.0),
    "gemini-2.5-flash-lite": _p(0.10, 0.40, 0.01, 0.0),
    # Alibaba (international list price, the smallest tier)
    "qwen3-coder-plus": _p(1.0, 5.0, 0.10, 0.0),
    "qwen3-coder-flash": _p(0.30, 1.50, 0.03, 0.0),
}

# What may follow a listed id and still be that model: a snapshot's date, "-latest", or a
# tag (``@...``, ``:...``). Not another version: claude-opus-4-8 is not claude-opus-4.
_VARIANT = re.compile(r"-\d{8}|-latest|[@:].+")


def find_price(model: str | None, configured: Mapping[str, PriceConfig]) -> Price | None:
    """The price of ``model``: the config's over the built-in table; None when neither knows it."""
    if not model:
        return None
    name = model.strip().lower().rsplit("/", 1)[-1]
    own = {key.lower().rsplit("/", 1)[-1]: value for key, value in configured.items()}
    found = _lookup(name, own)
    if found is not None:
        key, price = found
        return Price(
            price.input,
            price.output,
            price.input if price.cache_read is None else price.cache_read,
            price.input if price.cache_write is None else price.cache_write,
            f"prices.{key}",
        )
    built = _lookup(name, BUILT_IN)
    return built[1] if built is not None else None


def _lookup(name: str, table: Mapping[str, _T]) -> tuple[str, _T] | None:
    if name in table:
        return name, table[name]
    best: str | None = None
    for key in table:
        fits = name.startswith(key) and _VARIANT.fullmatch(name[len(key) :])
        if fits and (best is None or len(key) > len(best)):
            best = key
    return (best, table[best]) if best is not None else None


def cost_of(usage: Usage, price: Price) -> float:
    """What ``usage`` costs at ``price``, in US dollars."""
    return (
        usage.input_tokens * price.input
        + usage.output_tokens * price.output
        + usage.cache_read_tokens * price.cache_read
        + usage.cache_write_tokens * price.cache_write
    ) / 1_000_000
