"""What the ``council`` command refuses before a run or a resume, reading only (nothing
touches the user's checkout or the state first): another orchestrator on the repository
(``check_run_lock``), a task an unfinished session owns or a team's session that defines its
tasks otherwise (``check_unblocked``, ``check_team_resume``), nothing to resume
(``check_resumable``); and ``stored_report``, the newest session's report with no run.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import anyio.to_thread

from orchestrator.config.origin import ConfigOrigin
from orchestrator.config.run import RunConfig
from orchestrator.errors import NothingToResume, RecordNotFound
from orchestrator.models import ACTIVE_SESSION_STATUSES
from orchestrator.run.reports.report import RunReport
from orchestrator.run.reports.session_report import session_report
from orchestrator.run.run_lock import acquire_run_lock
from orchestrator.run.stores import describe_state, open_run_store, run_sessions
from orchestrator.scheduler.team.definitions import JoinChoice, plan_join
from orchestrator.scheduler.team.join import session_to_join
from orchestrator.scheduler.team.presence import alive_workstations
from orchestrator.state import FileStateStore
from orchestrator.state.session_rules import holding_session, refuse_if_held
from orchestrator.state.team import team_for

__all__ = [
    "check_resumable",
    "check_run_lock",
    "check_team_resume",
    "check_unblocked",
    "nothing_to_resume",
    "stored_report",
]


def nothing_to_resume(state_dir: Path, origin: ConfigOrigin | None = None) -> NothingToResume:
    """Nothing to resume in ``state_dir`` (of the runs started from ``origin``'s file, when
    known: another config's runs there are not this one's to resume)."""
    # Also what a run killed before its session was written leaves: its tasks are taken
    # over by the next `run`.
    of_file = f" started from {origin.path}" if origin is not None else ""
    return NothingToResume(
        f"there is no interrupted session{of_file} to resume in {state_dir}; "
        "start the run with `council run`"
    )


async def check_run_lock(config: RunConfig) -> None:
    """Refuse (``RunLocked``) when another orchestrator runs on the repository: the run lock
    taken and given back at once, before anything touches the user's checkout."""
    if config.state.backend == "file" and not config.state_dir.is_dir():
        return  # no run ever kept state here, so none runs now
    (await anyio.to_thread.run_sync(acquire_run_lock, config.repo)).release()


async def check_unblocked(config: RunConfig, join: JoinChoice | None = None) -> None:
    """Refuse a run, reading only, when one of its tasks belongs to a session that is still
    active or interrupted (``TaskInActiveSession``, as creating the session would), or, in a
    team, when the team's session it would join defines its tasks otherwise
    (``DefinitionsDiffer``, as joining would, unless ``join`` allows it): said before
    anything touches the user's checkout (``--if-base-dirty detach``) or the state."""
    if config.state.backend == "file" and not config.state_dir.is_dir():
        return  # no run ever kept state here: nothing can own a task
    await check_run_lock(config)  # first: a session another orchestrator runs is active
    if config.state.backend != "file":
        # A team's tasks belong to the team run's active session, which a workstation joins
        # (``scheduler.team.join`` decides, and ``definitions`` refuses a differing one).
        await _check_team_join(config, join or JoinChoice())
        return
    store = await open_run_store(config)
    async with contextlib.aclosing(store):
        for task in config.tasks:
            held = holding_session(await store.get_task_state(task.id))
            if held is not None:  # as creating the session would decide (``session_rules``)
                refuse_if_held(task.id, await store.get_session(held, metrics=False))


async def _check_team_join(config: RunConfig, join: JoinChoice) -> None:
    team = await team_for(config)
    assert team is not None  # a database-backed run is a team's
    stale = config.scheduler.stale_threshold
    store = await open_run_store(config)
    async with contextlib.aclosing(store):

        async def still_running(session_id: str) -> bool:
            return bool(await alive_workstations(store, session_id, stale))

        session = await session_to_join(store, team, still_running)
        if session is not None:
            plan_join(config, {t.id: t for t in config.tasks}, session, team.run_key, join)


async def check_team_resume(
    config: RunConfig, join: JoinChoice, session_id: str | None = None
) -> None:
    """Refuse a team's resume, reading only, when the session it would resume (``session_id``,
    or the newest unfinished) defines its tasks otherwise (``DefinitionsDiffer``, as the
    resume would, unless ``join`` allows it): said before anything touches the user's
    checkout. Nothing to check on the file backend, which has no team."""
    team = await team_for(config)
    if team is None:
        return
    store = await open_run_store(config)
    async with contextlib.aclosing(store):
        sessions = await run_sessions(store, config)
        if session_id is not None:
            session = next((s for s in sessions if s.session_id == session_id), None)
        else:
            unfinished = [s for s in sessions if s.status in ACTIVE_SESSION_STATUSES]
            session = max(unfinished, key=lambda s: s.created_at, default=None)
        if session is not None:
            plan_join(config, {t.id: t for t in config.tasks}, session, team.run_key, join)


def check_resumable(config: RunConfig) -> None:
    """Refuse a resume before anything is created when no run ever kept state here (a
    database is asked once it is open)."""
    if config.state.backend == "file" and not config.state_dir.is_dir():
        raise nothing_to_resume(config.state_dir)


async def stored_report(where: Path | RunConfig) -> RunReport:
    """The report of the newest session kept in a state directory, or in the store a run
    config names (no run needed)."""
    if isinstance(where, RunConfig):
        store = await open_run_store(where)
        place = describe_state(where)
    else:
        store, place = FileStateStore(where), str(where)
    async with contextlib.aclosing(store):
        sessions = await run_sessions(store, where if isinstance(where, RunConfig) else None)
        newest = max(sessions, key=lambda s: s.created_at, default=None)
        if newest is None:
            raise RecordNotFound(f"no run has been recorded in {place}")
        stale = where.scheduler.stale_threshold if isinstance(where, RunConfig) else None
        return await session_report(store, newest, stale)
