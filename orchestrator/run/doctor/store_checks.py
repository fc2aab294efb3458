"""The state store a run would use: the file store opens and its records read back intact;
the team's database is reachable and its schema is one this release can use.

Nothing is created: a file store that does not exist yet, or a database without the schema,
is what the first run makes. Reading a damaged file record recovers it from its history (as
any read of the store does); one without a good version is reported.
"""

from __future__ import annotations

from pathlib import Path

import anyio.to_thread

from orchestrator.config.sections import StateConfig
from orchestrator.errors import CouncilError, StateError
from orchestrator.run.doctor.checklist import Check
from orchestrator.run.doctor.health_check import health_check
from orchestrator.run.preflight import council_dir_problem
from orchestrator.state.file.store import FileStateStore
from orchestrator.worktrees.layout import COUNCIL_DIR

__all__ = ["file_store_checks", "postgres_check", "postgres_health_check"]

_GROUP = "state"
_NAME = "state store"


async def file_store_checks(state_dir: Path, repo: Path, anchor: Path) -> list[Check]:
    """The file store at ``state_dir`` (the events of ``repo``), reached from ``anchor``;
    never opened through a link planted in ``.council`` (the store's own rule). Once it
    could be read, a second line says how healthy it is (``health_check``)."""
    if state_dir.is_relative_to(repo / COUNCIL_DIR):
        problem = await anyio.to_thread.run_sync(council_dir_problem, repo)
        if problem is not None:
            fix = "replace the link with a real directory (its target is left alone)"
            return [Check.fail(_GROUP, _NAME, f"not opened: {problem.split('; ')[0]}", fix)]
    if not await anyio.to_thread.run_sync(state_dir.is_dir):
        return [Check.ok(_GROUP, _NAME, f"no run recorded yet (the first makes {state_dir})")]
    try:
        events = repo / COUNCIL_DIR / "events.jsonl"
        async with FileStateStore(state_dir, events_path=events, anchor=anchor) as store:
            sessions = await store.list_sessions()
            problems = await store.verify_records()
            report = await store.health()
    except (CouncilError, OSError) as exc:  # a link in the way is one too (PathEscapeError)
        fix = "make its directory readable and writable for this user, then check again"
        return [Check.fail(_GROUP, _NAME, f"{state_dir} cannot be read: {exc}", fix)]
    lost = [p for p in problems if not p.recovered]
    if lost:
        named = ", ".join(f"{p.kind}/{p.key}" for p in lost[:3])
        lost_check = Check.fail(
            _GROUP,
            _NAME,
            f"{len(lost)} damaged record(s) without a good version in {state_dir}: {named}",
            "restore a checkpoint (`council checkpoint list`, then `council checkpoint "
            "restore <id>`), or move a damaged record's directory away to start it afresh",
        )
        return [lost_check, health_check(report)]
    runs = f"{len(sessions)} run{'s' * (len(sessions) != 1)} recorded"
    mended = f", {len(problems)} damaged record(s) recovered from history" if problems else ""
    return [Check.ok(_GROUP, _NAME, f"{state_dir}: {runs}{mended}"), health_check(report)]


async def postgres_check(state: StateConfig, source: str | None) -> Check:
    """The team's database: reachable, and its schema not newer than this release's."""
    from orchestrator.state.postgres.health import schema_health  # psycopg only when used

    try:
        health = await schema_health(state.dsn)
    except StateError as exc:
        setting = f"state.dsn in {source}" if source else "state.dsn"
        return Check.fail(
            _GROUP,
            "database",
            str(exc),
            f"start the server, or point {setting} or COUNCIL_DATABASE_URL at one "
            "(`council db up` starts a local one)",
        )
    if health.version is None:
        detail = f"{health.where} reachable; the first run makes the schema"
        return Check.ok(_GROUP, "database", detail)
    if not health.usable:
        return Check.fail(
            _GROUP,
            "database",
            f"{health.where}: schema version {health.version} is newer than this release's "
            f"({health.known}): another workstation runs a newer CLI Council",
            "upgrade cli-council here to the release the team uses",
        )
    if health.version < health.known:
        detail = (
            f"{health.where} reachable, schema version {health.version}; the next run "
            f"migrates it to {health.known}"
        )
        return Check.ok(_GROUP, "database", detail)
    return Check.ok(
        _GROUP, "database", f"{health.where} reachable, schema version {health.version}"
    )


async def postgres_health_check(state: StateConfig) -> Check | None:
    """The team database's health, when its schema is this release's own (opening the store
    on any other would migrate it, which the doctor never does); None otherwise."""
    from orchestrator.state.postgres.health import schema_health
    from orchestrator.state.postgres.store import PostgresStateStore

    try:
        schema = await schema_health(state.dsn)
        if schema.version != schema.known:
            return None
        async with await PostgresStateStore.connect(state.dsn) as store:
            report = await store.health(large_record_bytes=int(state.monitor.large_record))
    except StateError:
        return None  # the database line above says what is wrong with reaching it
    return health_check(report)
