"""Saying once, not every tick, that the state database is away, and when it is back.

While the store cannot be reached nothing can be recorded in it, so these go to the log (the
``council`` command shows warnings on stderr); the first failure says what is known and what
happens meanwhile, the recovery says how long it lasted.
"""

from __future__ import annotations

import logging
import time

from orchestrator.errors import StoreUnavailable

__all__ = ["Outage"]

log = logging.getLogger(__name__)


class Outage:
    def __init__(self) -> None:
        self.since: float | None = None

    def down(self, exc: StoreUnavailable) -> None:
        if self.since is None:
            self.since = time.monotonic()
            log.warning(
                "%s; running sessions go on, and fence themselves if they cannot renew their "
                "claims in time; retrying every tick",
                exc,
            )

    def up(self) -> None:
        if self.since is not None:
            log.warning(
                "the state database is back after %.0fs; the run goes on",
                time.monotonic() - self.since,
            )
            self.since = None
