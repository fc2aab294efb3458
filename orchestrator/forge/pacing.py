"""What the forge client remembers between requests, without knowing the client library.

``ETagCache``: the last body and ETag of each GET, so the next GET of the same URL asks
``If-None-Match`` and a 304 (free under GitHub's rate limit) gives the remembered body back.
``Pacing``: how long to wait before a request is tried again, bounded: a rate limit's
``retry-after`` or ``x-ratelimit-reset`` (within a total waiting budget), a server error's
short backoff (a bounded number of times); the clock and the sleep are injectable for tests.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from threading import Lock

import anyio

from orchestrator.forge.base import RequestCount

__all__ = ["ETagCache", "Pacing", "RequestCounter"]

_SERVER_BACKOFF = (1.0, 2.0, 4.0, 8.0)
_DEFAULT_RATE_WAIT = 60.0  # GitHub: without a retry-after, wait at least a minute


@dataclass
class RequestCounter:
    full: int = 0
    not_modified: int = 0
    retried: int = 0

    def snapshot(self) -> RequestCount:
        return RequestCount(self.full, self.not_modified, self.retried)


class ETagCache:
    """URL (with its query) -> (ETag, body) of its last full answer."""

    def __init__(self, limit: int = 512) -> None:
        self._entries: dict[str, tuple[str, bytes]] = {}
        self._limit = limit
        self._lock = Lock()

    def etag(self, key: str) -> str | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[0] if entry else None

    def body(self, key: str) -> bytes | None:
        with self._lock:
            entry = self._entries.get(key)
        return entry[1] if entry else None

    def store(self, key: str, etag: str | None, body: bytes) -> None:
        with self._lock:
            if etag is None:
                self._entries.pop(key, None)
                return
            self._entries.pop(key, None)
            self._entries[key] = (etag, body)
            while len(self._entries) > self._limit:
                del self._entries[next(iter(self._entries))]


@dataclass
class Pacing:
    """The waits between tries. ``rate_budget``: seconds of rate-limit waiting allowed over the
    client's life; ``server_retries``: tries again after a 5xx or a lost connection."""

    rate_budget: float = 900.0
    server_retries: int = 3
    sleep: Callable[[float], Awaitable[None]] = anyio.sleep
    clock: Callable[[], float] = time.time

    def rate_wait(
        self, status: int, headers: Mapping[str, str], message: str, waited: float
    ) -> float | None:
        """Seconds to wait out a rate limit this answer announces, the request having waited
        ``waited`` already (None: it announces none, or the wait would overrun the budget,
        which the caller reports)."""
        wait = self.announced_wait(status, headers, message)
        if wait is None or waited + wait > self.rate_budget:
            return None
        return wait

    def announced_wait(
        self, status: int, headers: Mapping[str, str], message: str = ""
    ) -> float | None:
        """GitHub's rules: ``retry-after`` seconds; else, with ``x-ratelimit-remaining: 0``,
        until ``x-ratelimit-reset``; else a minute for a 429 or a 403 that says it is a rate
        limit (a 403 without that is a permission problem, not waited out)."""
        if status not in (403, 429):
            return None
        retry_after = headers.get("retry-after")
        if retry_after is not None:
            try:
                return max(0.0, float(retry_after))
            except ValueError:
                return _DEFAULT_RATE_WAIT
        if headers.get("x-ratelimit-remaining") == "0":
            try:
                reset = float(headers.get("x-ratelimit-reset", ""))
            except ValueError:
                return _DEFAULT_RATE_WAIT
            return max(0.0, reset - self.clock()) + 1.0
        if status == 429 or "rate limit" in message.lower():
            return _DEFAULT_RATE_WAIT
        return None

    def server_wait(self, tries: int) -> float | None:
        """The backoff before try ``tries + 1`` after a server error (None: no more tries)."""
        if tries >= self.server_retries:
            return None
        return _SERVER_BACKOFF[min(tries, len(_SERVER_BACKOFF) - 1)]

    async def pause(self, seconds: float) -> None:
        await self.sleep(seconds)
