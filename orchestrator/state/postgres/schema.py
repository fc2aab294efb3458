"""The schema ``council`` and its versioned migrations.

Each migration runs once, in order, in one transaction, under a transaction-scoped advisory
lock, so workstations that start together never apply one twice; ``schema_migrations`` says
which have run. A migration is never edited once released: a change is a new one.

Records keep their whole document as JSONB (``doc``, the pydantic model dumped), beside the
columns the database itself must read: versions, the claim's token and lease, the session a
task belongs to. A task's previous versions stay in ``task_history`` (the newest ten), those of
other records in ``record_history``, and older ones packed in ``history_archive`` (``history``);
a keyed record may carry ``expires_at``. Events are in ``events``, and fencing tokens come
from one sequence, so a token is larger than every token handed out before it on any
workstation.
"""

from __future__ import annotations

from typing import Any

from psycopg import AsyncConnection

__all__ = ["MIGRATIONS", "SCHEMA", "migrate"]

SCHEMA = "council"
_LOCK = 0x636F756E63696C  # the advisory lock of migrations ("council")

MIGRATIONS: tuple[str, ...] = (
    """
    CREATE SEQUENCE council.fence_seq;
    CREATE TABLE council.tasks (
        task_id text PRIMARY KEY,
        session_id text,
        version integer NOT NULL,
        status text NOT NULL,
        claim_token bigint,
        claim_status text,
        claim_expires timestamptz,
        doc jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE INDEX tasks_session ON council.tasks (session_id);
    CREATE INDEX tasks_live_claims ON council.tasks (claim_expires)
        WHERE claim_status = 'active';
    CREATE TABLE council.task_history (
        task_id text NOT NULL,
        version integer NOT NULL,
        doc jsonb NOT NULL,
        PRIMARY KEY (task_id, version)
    );
    CREATE TABLE council.sessions (
        session_id text PRIMARY KEY,
        version integer NOT NULL,
        status text NOT NULL,
        created_at timestamptz NOT NULL,
        doc jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now()
    );
    CREATE TABLE council.checkpoints (
        checkpoint_id text PRIMARY KEY,
        session_id text NOT NULL,
        created_at timestamptz NOT NULL,
        doc jsonb NOT NULL
    );
    CREATE INDEX checkpoints_session ON council.checkpoints (session_id, created_at);
    CREATE TABLE council.records (
        namespace text NOT NULL,
        key text NOT NULL,
        version integer NOT NULL,
        doc jsonb NOT NULL,
        updated_at timestamptz NOT NULL DEFAULT now(),
        PRIMARY KEY (namespace, key)
    );
    CREATE TABLE council.events (
        id bigserial PRIMARY KEY,
        at timestamptz NOT NULL DEFAULT now(),
        type text NOT NULL,
        level text NOT NULL,
        data jsonb NOT NULL
    );
    """,
    # 2: history for every kind, the old versions compacted (``history``); record expiry.
    """
    CREATE TABLE council.record_history (
        kind text NOT NULL,
        key text NOT NULL,
        version integer NOT NULL,
        doc jsonb NOT NULL,
        PRIMARY KEY (kind, key, version)
    );
    CREATE TABLE council.history_archive (
        kind text NOT NULL,
        key text NOT NULL,
        first_version integer NOT NULL,
        last_version integer NOT NULL,
        data bytea NOT NULL,
        PRIMARY KEY (kind, key, first_version)
    );
    ALTER TABLE council.records ADD COLUMN expires_at timestamptz;
    CREATE INDEX records_expiry ON council.records (expires_at) WHERE expires_at IS NOT NULL;
    """,
)


async def migrate(conn: AsyncConnection[Any]) -> int:
    """Apply the migrations this database lacks; how many were applied."""
    applied = 0
    async with conn.transaction():
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_LOCK,))
        await conn.execute("CREATE SCHEMA IF NOT EXISTS council")
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS council.schema_migrations ("
            "version integer PRIMARY KEY, applied_at timestamptz NOT NULL DEFAULT now())"
        )
        cursor = await conn.execute("SELECT version FROM council.schema_migrations")
        done = {row[0] for row in await cursor.fetchall()}
        for number, sql in enumerate(MIGRATIONS, start=1):
            if number in done:
                continue
            await conn.execute(sql.encode())
            await conn.execute(
                "INSERT INTO council.schema_migrations (version) VALUES (%s)", (number,)
            )
            applied += 1
    return applied
