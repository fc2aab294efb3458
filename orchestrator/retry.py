"""Retry policy: how long to wait before trying again, and whether to try again at all.

The only module that imports tenacity. A ``RetryPolicy`` is built from the run config's
``retry:`` section and answers two questions:

- ``next_delay(attempt)``: the backoff before retry number ``attempt`` (1-based), exponential
  (``backoff_initial * multiplier ** (attempt - 1)``) and capped at ``backoff_max``. With
  ``jitter`` it is "equal jitter": half of that delay is fixed and the other half random, so
  parallel sessions that failed together spread out, yet no delay is ever shorter than half the
  exponential one (a retry can never become a tight respawn loop).
- ``decide(result, failures)``: what to do with an attempt that failed (a rate-limited one is parked
  instead, by ``orchestrator.scheduler.rules.parks``: it is not a failure and uses up no retry),
  driven by its classified outcome:

  ===========================================  ====================================
  auth, permission, config, or not retryable   ``GiveUp(reason)`` with the CLI's message
  retryable, fewer than ``max_retries`` so far ``Retry(delay)``
  retryable, retries used up                   ``GiveUp`` naming the last error
  ===========================================  ====================================

``retry_async(fn, retry_on=...)`` runs an async callable under the same backoff, for the
transient errors of the orchestrator's own steps.

The policy only reads a result through ``AttemptOutcome`` (status, retryable, outcome kind,
reset time, message), so this wrapper layer does not depend on the workflow modules above it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, TypeVar

import tenacity

from orchestrator.config.sections import RetryConfig

__all__ = [
    "NEVER_RETRIED",
    "AttemptOutcome",
    "Decision",
    "GiveUp",
    "Retry",
    "RetryPolicy",
    "retry_for",
]

T = TypeVar("T")

NEVER_RETRIED = frozenset({"auth_required", "permission_denied", "config"})
"""Outcome kinds another attempt cannot fix: the user has to act (log in, allow, fix)."""


class AttemptOutcome(Protocol):
    """What the policy reads of a finished attempt (``WorkflowResult`` has all of it)."""

    @property
    def status(self) -> str: ...

    @property
    def retryable(self) -> bool: ...

    @property
    def outcome_kind(self) -> str | None: ...

    @property
    def retry_at(self) -> datetime | None: ...

    @property
    def message(self) -> str: ...


@dataclass(frozen=True)
class Retry:
    """Try again after ``delay`` seconds."""

    delay: float


@dataclass(frozen=True)
class GiveUp:
    """No further attempt: ``reason`` says why, in the CLI's own words where it gave any."""

    reason: str


Decision = Retry | GiveUp


class RetryPolicy:
    """Backoff and retry decisions for one run (see the module docstring)."""

    def __init__(self, config: RetryConfig | None = None) -> None:
        self.config = config or RetryConfig()
        cfg = self.config
        half_initial = cfg.backoff_initial / 2
        half_cap = cfg.backoff_max / 2
        self._wait: tenacity.wait.wait_base = tenacity.wait_exponential(
            multiplier=cfg.backoff_initial, exp_base=cfg.multiplier, max=cfg.backoff_max
        )
        if cfg.jitter:
            # Half fixed plus half "full jitter": never below half the exponential delay.
            self._wait = tenacity.wait_exponential(
                multiplier=half_initial, exp_base=cfg.multiplier, max=half_cap
            ) + tenacity.wait_random_exponential(
                multiplier=half_initial, exp_base=cfg.multiplier, max=half_cap
            )

    @property
    def max_retries(self) -> int:
        return self.config.max_retries

    def next_delay(self, attempt: int) -> float:
        """Seconds to wait before retry number ``attempt`` (1 for the first retry)."""
        state = tenacity.RetryCallState(tenacity.Retrying(), None, (), {})
        state.attempt_number = max(1, attempt)
        return float(self._wait(state))

    def decide(self, result: AttemptOutcome, failures: int) -> Decision:
        """What to do after an attempt that failed (not one that was rate limited: see
        ``orchestrator.scheduler.rules.parks``).

        ``failures`` counts the failed attempts of the task so far, this one included.
        """
        kind = result.outcome_kind or ""
        message = result.message or kind or "failed"
        if kind in NEVER_RETRIED or not result.retryable:
            return GiveUp(reason=message)
        if failures > self.max_retries:
            tries = "attempt" if failures == 1 else "attempts"
            return GiveUp(reason=f"gave up after {failures} {tries}; last error: {message}")
        return Retry(delay=self.next_delay(failures))

    async def retry_async(
        self,
        fn: Callable[[], Awaitable[T]],
        *,
        retry_on: tuple[type[BaseException], ...],
    ) -> T:
        """Await ``fn()``, retrying ``retry_on`` errors with this backoff up to
        ``max_retries`` times; the last error is re-raised as itself."""
        retrying = tenacity.AsyncRetrying(
            stop=tenacity.stop_after_attempt(self.max_retries + 1),
            wait=self._wait,
            retry=tenacity.retry_if_exception_type(retry_on),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await fn()
        raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover


async def retry_for(
    fn: Callable[[], Awaitable[T]],
    *,
    retry_on: tuple[type[BaseException], ...],
    seconds: float,
    first: float = 0.05,
    cap: float = 1.0,
) -> T:
    """Await ``fn()``, retrying ``retry_on`` errors with jittered exponential backoff (from
    ``first`` up to ``cap`` seconds) until ``seconds`` have passed; the last error is
    re-raised as itself. For outages measured in time (a database restarting), not in tries."""
    retrying = tenacity.AsyncRetrying(
        stop=tenacity.stop_after_delay(seconds),
        wait=tenacity.wait_exponential_jitter(multiplier=first, max=cap),
        retry=tenacity.retry_if_exception_type(retry_on),
        reraise=True,
    )
    async for attempt in retrying:
        with attempt:
            return await fn()
    raise AssertionError("unreachable: tenacity re-raises the last error")  # pragma: no cover
