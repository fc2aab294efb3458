"""What the PostgreSQL backend does when the database cannot be reached for a while.

A restart, a failover or a network blip breaks every pooled connection at once. Each store
call is tried again on a new connection, with backoff, for up to ``deadline`` seconds
(psycopg's ``OperationalError``: connection lost, server shutting down or starting up, a
statement timeout; and a transaction the server ended because a pause left it idle); past it
the call fails with ``StoreUnavailable`` naming the database, which the scheduler survives
(it keeps ticking, and a session that cannot renew its claim in time fences itself). The
deadline is kept well below the self-fence deadline, so one slow call never hides a lease
that is about to lapse.

Trying a write again is safe here: every transaction either checks the version or the fence
it was given, or merges the same fields again (an update whose commit was lost in flight is
applied once more, not twice in effect); a claim whose commit was lost is adopted by its own
holder (``claims``).
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import anyio
import psycopg

from orchestrator.errors import StoreUnavailable
from orchestrator.retry import retry_for

__all__ = ["DEADLINE", "resilient"]

T = TypeVar("T")
DEADLINE = 5.0  # seconds a call keeps trying before StoreUnavailable
_FIRST_PAUSE = 0.05  # seconds before the second try

# Connection-class errors, and the server ending a transaction this process left idle too long
# (a pause caught it mid-transaction: SIGSTOP, a debugger): nothing of it was committed.
_PASSING: tuple[type[Exception], ...] = (
    psycopg.OperationalError,
    psycopg.errors.IdleInTransactionSessionTimeout,
)


async def resilient(fn: Callable[[], Awaitable[T]], where: str, deadline: float = DEADLINE) -> T:
    """``fn()``, tried again on connection-class errors for ``deadline`` seconds from its
    first try (which runs bare: a retry loop is built only once it failed)."""
    started = time.monotonic()
    try:
        return await fn()
    except _PASSING as exc:
        left = deadline - (time.monotonic() - started)
        if left <= _FIRST_PAUSE:
            raise _unavailable(exc, where, deadline) from None
    await anyio.sleep(_FIRST_PAUSE)  # as the retry loop would before its second try
    try:
        return await retry_for(fn, retry_on=_PASSING, seconds=left - _FIRST_PAUSE)
    except _PASSING as exc:
        raise _unavailable(exc, where, deadline) from None


def _unavailable(exc: Exception, where: str, deadline: float) -> StoreUnavailable:
    text = str(exc).strip()
    reason = text.splitlines()[0] if text else type(exc).__name__
    return StoreUnavailable(
        f"the state database {where} cannot be reached ({reason}); tried for {deadline:g}s"
    )
