"""Which state store a run config names, opened; and how to name it in a message.

- ``backend: file`` (the default): ``FileStateStore`` under ``config.state_dir``, its events
  beside it in ``<repo>/.council/events.jsonl``.
- ``backend: postgresql``: ``PostgresStateStore`` on the database ``state.dsn`` names, else
  ``COUNCIL_DATABASE_URL``, else libpq's own defaults (``PG*`` variables, ``.pgpass``, service
  files). psycopg is imported only then, so a run on the file backend never pays for it;
  nor does it pay for the team's parts (git, the worktrees), which ``council status`` on a
  file store never needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import anyio.to_thread

from orchestrator.config.origin import of_config, origin_of
from orchestrator.models import SessionRecord
from orchestrator.run.run_lock import check_record_locks
from orchestrator.scheduler.context import TEAM
from orchestrator.state.file.record_files.layout import events_log
from orchestrator.state.file.store import FileStateStore
from orchestrator.state.local_records import LocalRecords
from orchestrator.state.protocol import StateStore

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig

__all__ = [
    "clone_local",
    "describe_state",
    "events_log",
    "open_run_store",
    "run_sessions",
]


def clone_local() -> frozenset[str]:
    """The record namespaces of one clone (``state.local_records``), kept in its own
    ``.council/state`` even on a team's database: its worktrees, its CLI processes, its OS file
    locks and merge lock. Tasks, sessions, handoffs, cancel requests and the team's own records
    are shared by every workstation."""
    from orchestrator.locks.merge_lock import MERGE_OWNER
    from orchestrator.locks.registry import FILE_OWNERS, LOCK_WAITS, SESSION_LOCKS
    from orchestrator.runner.cli_runs import CLI_RUNS
    from orchestrator.worktrees.sessions import NAMESPACE as WORKTREES

    return frozenset({WORKTREES, CLI_RUNS, FILE_OWNERS, SESSION_LOCKS, LOCK_WAITS, MERGE_OWNER})


async def open_run_store(config: RunConfig) -> StateStore:
    """The run's state store, open (``StateError`` naming the database when it cannot be
    reached); the caller closes it (``aclose``)."""
    if config.state.backend == "postgresql":
        from orchestrator.state.postgres.store import PostgresStateStore

        await anyio.to_thread.run_sync(check_record_locks, config.repo)
        local = LocalRecords.of(_file_store(config), clone_local())
        try:
            return await PostgresStateStore.connect(config.state.dsn, local=local)
        except BaseException:
            await local.store.aclose()
            raise
    await anyio.to_thread.run_sync(check_record_locks, config.repo)
    return _file_store(config)


def _file_store(config: RunConfig) -> FileStateStore:
    return FileStateStore(
        config.state_dir,
        events_path=events_log(config.repo),
        anchor=config.state_anchor,
        events_rotate_bytes=int(config.state.monitor.events_rotate_size),
    )


def describe_state(config: RunConfig) -> str:
    """Where the run's state lives, for messages (a database never with its password)."""
    if config.state.backend == "postgresql":
        from orchestrator.state.postgres.connection import describe, resolve_dsn

        return f"the database {describe(resolve_dsn(config.state.dsn))}"
    return str(config.state_dir)


async def run_sessions(
    store: StateStore, config: RunConfig | None, *, others: list[SessionRecord] | None = None
) -> list[SessionRecord]:
    """The sessions of the run ``config`` describes, oldest first: on a file store (the
    repository's own) those started from ``config``'s file (``of_config``: another config of
    the same repository, a goal's, starts runs of its own); on a shared database its team
    run's (another repository's runs may share the database; each workstation reads the team's
    run from its own clone's file). Without their metrics: a caller picks one of them, and
    computing them reads every task of every session. ``others``, when given, is extended by
    the file store's sessions of other config files (a caller that chose says so)."""
    sessions = await store.list_sessions(metrics=False)
    if config is None:
        return sessions
    if config.state.backend != "postgresql":
        mine = of_config(sessions, origin_of(config))
        if others is not None:
            others.extend(s for s in sessions if s not in mine)
        return mine
    from orchestrator.state.team import team_for  # git: a team's database only

    team = await team_for(config)
    assert team is not None
    return [s for s in sessions if s.metadata.get(TEAM) == team.run_key]
