"""Which workstations are in a team run: each keeps a presence record fresh while it runs.

The record (namespace ``workstations``, key ``Team.workstation``) says who it is (host, pid),
which session it works in, since when, and how many attempts it runs; it is written at most
every ``every`` seconds and removed when the workstation leaves. It is for people and for
the decision to mark a session interrupted (not while another workstation still runs it),
never for correctness: that rests on claims and fences. A workstation counts as alive while
its record is younger than ``stale`` seconds (the records' stamps come from the database's
clock; the comparison allows for this machine's clock being off by a few seconds). Given
``stale``, the record also expires then (``put_record``'s ``ttl``), so a workstation that died
without leaving leaves no record behind once upkeep purges it.
"""

from __future__ import annotations

import contextlib
import time
from datetime import datetime, timedelta
from typing import TYPE_CHECKING

from orchestrator.errors import StateError
from orchestrator.models import KeyedRecord, utcnow

if TYPE_CHECKING:
    # Types only: `council status` reads presence, without a store or a team.
    from orchestrator.state.protocol import StateStore
    from orchestrator.state.team import Team

__all__ = ["NAMESPACE", "Presence", "alive_among", "alive_workstations", "gone_here"]

NAMESPACE = "workstations"
_SKEW = 5.0  # seconds this machine's clock may be off from the database's


class Presence:
    def __init__(
        self, store: StateStore, team: Team, every: float, *, stale: float | None = None
    ) -> None:
        self._store = store
        self._team = team
        self._every = every
        # A record not refreshed for ``stale`` (and the clock skew allowed) describes a
        # workstation that died without leaving: it expires then, and upkeep removes it.
        self._ttl = stale + _SKEW if stale is not None else None
        self._last = 0.0
        self._since = utcnow().isoformat()

    async def beat(self, session_id: str, running: int, *, force: bool = False) -> None:
        """Refresh this workstation's record (at most every ``every`` seconds unless forced);
        a store that cannot be reached now is tried again next time."""
        now = time.monotonic()
        if not force and now - self._last < self._every:
            return
        from orchestrator.process import procid  # psutil: `council status` reads presence only

        proc = procid.current()
        data = {
            "workstation": self._team.workstation,
            "host": proc.host,
            "pid": proc.pid,
            "started": proc.started,
            "pid_namespace": procid.pid_namespace(),
            "session_id": session_id,
            "run": self._team.run_key,
            "since": self._since,
            "running": running,
        }
        try:
            await self._store.put_record(
                NAMESPACE, self._team.workstation, data, durable=False, ttl=self._ttl
            )
        except StateError:
            return
        self._last = now

    async def leave(self) -> None:
        with contextlib.suppress(StateError):  # else its record goes stale on its own
            await self._store.delete_record(NAMESPACE, self._team.workstation, durable=False)


async def alive_workstations(
    store: StateStore, session_id: str, stale: float, *, but: str | None = None
) -> list[KeyedRecord]:
    """The presence records of the workstations working in ``session_id`` now (``but`` left
    out), oldest first; one whose process this host knows is gone (``gone_here``) is not."""
    found = alive_among(await store.list_records(NAMESPACE), session_id, stale, utcnow(), but=but)
    return [record for record in found if not gone_here(record)]


def gone_here(record: KeyedRecord) -> bool:
    """The workstation of presence record ``record`` ran on this host, in this pid namespace,
    and its process is gone (dead, or its pid taken by another process since): known at once,
    without waiting for its record to go stale. A record of another host, of another pid
    namespace (a container with the same host name), or without the process's start time is
    never taken for gone here."""
    from orchestrator.process import procid  # psutil: `council status` reads presence only

    data = record.data
    namespace = data.get("pid_namespace")
    if not isinstance(namespace, str) or not namespace or namespace != procid.pid_namespace():
        return False
    proc = procid.ProcessId.from_dict(data)
    if proc is None or not proc.started or proc.host != procid.current().host:
        return False
    return procid.is_alive(proc) is False


def alive_among(
    records: list[KeyedRecord],
    session_id: str,
    stale: float,
    now: datetime,
    *,
    but: str | None = None,
) -> list[KeyedRecord]:
    """``alive_workstations`` of presence records already read (none of them expired)."""
    cutoff = now - timedelta(seconds=stale + _SKEW)
    found = [
        record
        for record in records
        if record.data.get("session_id") == session_id
        and record.key != but
        and record.updated_at >= cutoff
    ]
    return sorted(found, key=lambda r: str(r.data.get("since", "")))
