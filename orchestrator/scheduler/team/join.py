"""Joining a team run: the first workstation creates its session, the others join it.

One keyed record per team run (namespace ``team_runs``, key ``Team.run_key``) names the
session workstations share. It is written by compare-and-set, so two workstations starting
at the same moment never make two sessions: the one whose write lands creates the session, the
other reads the record and joins. The record is written before the session is created; a
joiner that finds the session not there yet waits for it (a creator that died in between is
replaced after ``CREATE_GRACE`` seconds). A session that has ended (completed, failed,
interrupted with no workstation left in it) is not joined: the next ``council run`` starts a
new one, and work that already landed is recognised on the remote's base, never run twice.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import anyio

from orchestrator.errors import StateError, VersionConflict
from orchestrator.models import SessionRecord, SessionStatus, utcnow
from orchestrator.state.protocol import StateStore
from orchestrator.state.record_rules import new_id
from orchestrator.state.team import Team

__all__ = ["NAMESPACE", "Joined", "join_team_run", "point_team_run", "session_to_join"]

NAMESPACE = "team_runs"
CREATE_GRACE = 30.0  # seconds a joiner waits for the creator to write the session
_POLL = 0.2


@dataclass(frozen=True)
class Joined:
    session_id: str
    created: bool  # this workstation must create the session (it is not there yet)


async def join_team_run(
    store: StateStore, team: Team, still_running: Callable[[str], Awaitable[bool]]
) -> Joined:
    """The session of ``team``'s run to work in. ``still_running(session_id)`` says whether an
    interrupted session still has a live workstation (then it is joined, not replaced)."""
    waited = 0.0
    while True:
        record = await store.get_record(NAMESPACE, team.run_key)
        fresh = new_id("s")
        data = {"session_id": fresh, "created_by": team.workstation, "at": utcnow().isoformat()}
        try:
            if record is None:
                await store.put_record(NAMESPACE, team.run_key, data, expected_version=0)
                return Joined(fresh, created=True)
            session_id = str(record.data.get("session_id", ""))
            session = await store.get_session(session_id, metrics=False) if session_id else None
            if session is None:
                if waited < CREATE_GRACE and session_id:
                    await anyio.sleep(_POLL)
                    waited += _POLL
                    continue
            elif session.status == SessionStatus.ACTIVE or (
                session.status == SessionStatus.INTERRUPTED and await still_running(session_id)
            ):
                return Joined(session_id, created=False)
            await store.put_record(NAMESPACE, team.run_key, data, expected_version=record.version)
            return Joined(fresh, created=True)
        except VersionConflict:
            continue  # another workstation wrote it first: read what it wrote
        except StateError as exc:
            raise StateError(f"cannot join team run {team.run_key!r}: {exc}") from exc


async def session_to_join(
    store: StateStore, team: Team, still_running: Callable[[str], Awaitable[bool]]
) -> SessionRecord | None:
    """The session ``join_team_run`` would join now, reading only (None: it would create
    one): for the checks made before anything is changed (``council.check_unblocked``)."""
    record = await store.get_record(NAMESPACE, team.run_key)
    session_id = str(record.data.get("session_id", "")) if record is not None else ""
    session = await store.get_session(session_id, metrics=False) if session_id else None
    if session is None:
        return None
    if session.status == SessionStatus.ACTIVE or (
        session.status == SessionStatus.INTERRUPTED and await still_running(session_id)
    ):
        return session
    return None


async def point_team_run(store: StateStore, team: Team, session_id: str) -> None:
    """Make ``session_id`` the team run's session (a resumed one): ``council run`` on another
    workstation joins it from now on."""
    data = {"session_id": session_id, "created_by": team.workstation, "at": utcnow().isoformat()}
    await store.put_record(NAMESPACE, team.run_key, data)
