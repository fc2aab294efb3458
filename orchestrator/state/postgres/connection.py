"""Connections to the team's database: where it is, the pool, and the server's limits.

The connection string is libpq's, so what works for ``psql`` works here: a DSN or URL given
in the configuration, else ``COUNCIL_DATABASE_URL``, else libpq's own defaults (the ``PG*``
variables, ``.pgpass``, ``pg_service.conf``, ``sslmode``, client certificates).

Every connection of the pool carries the limits that keep a workstation from holding the
database hostage: a statement never runs longer than ``statement_timeout``, a transaction left
idle is ended by the server (``idle_in_transaction_session_timeout``), and TCP keepalives find a
dead peer long before the lease it holds would lapse.
"""

from __future__ import annotations

import logging
import os
from typing import Any

import psycopg
from psycopg import AsyncConnection, conninfo
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from orchestrator.errors import StateError
from orchestrator.state.postgres.schema import migrate

__all__ = ["DSN_VARIABLE", "describe", "open_pool", "resolve_dsn"]

DSN_VARIABLE = "COUNCIL_DATABASE_URL"

# The pool says at warning level each time it drops a broken connection or fails to open one:
# expected while the database restarts, and the store's own error (``outages``) says what
# matters once, in words a user can act on.
logging.getLogger("psycopg.pool").setLevel(logging.ERROR)

# Server-side limits, in milliseconds. Every transaction of the store takes milliseconds, so a
# transaction idle for seconds belongs to a workstation that stopped mid-way (SIGSTOP, a pause,
# a lost network): the server ends it and frees its row locks long before anyone waiting for
# them gives up (lock_timeout).
APPLICATION = "cli-council"  # the store's connections, as the server lists them
IDLE_IN_TRANSACTION = 5000  # ms: also how long a stopped pipelined transaction is left (claims)
_LIMITS = {
    "statement_timeout": "15000",
    "idle_in_transaction_session_timeout": str(IDLE_IN_TRANSACTION),
    "lock_timeout": "10000",
}
_KEEPALIVES = {
    "keepalives": "1",
    "keepalives_idle": "10",
    "keepalives_interval": "5",
    "keepalives_count": "3",
    "connect_timeout": "10",
}


def resolve_dsn(dsn: str | None = None) -> str:
    """The connection string to use: ``dsn``, else ``COUNCIL_DATABASE_URL``, else the empty
    string (libpq's defaults); ``StateError`` naming the problem when it cannot be parsed."""
    chosen = dsn if dsn is not None else os.environ.get(DSN_VARIABLE, "")
    try:
        conninfo.conninfo_to_dict(chosen)
    except psycopg.ProgrammingError as exc:
        source = "state.dsn" if dsn is not None else DSN_VARIABLE
        raise StateError(f"{source} is not a valid PostgreSQL connection string: {exc}") from None
    return chosen


def describe(dsn: str) -> str:
    """Where ``dsn`` leads, for messages: user, host or socket, port and database, never the
    password."""
    try:
        params = conninfo.conninfo_to_dict(dsn)
    except psycopg.ProgrammingError:
        return "<unparsable connection string>"
    host = str(params.get("host") or os.environ.get("PGHOST") or "the default socket")
    port = str(params.get("port") or os.environ.get("PGPORT") or "5432")
    user = str(params.get("user") or os.environ.get("PGUSER") or "")
    name = str(params.get("dbname") or os.environ.get("PGDATABASE") or user or "")
    who = f"{user}@" if user else ""
    return f"postgresql://{who}{host}:{port}/{name}"


def connection_kwargs() -> dict[str, Any]:
    """What every connection of the pool is opened with (module doc)."""
    options = " ".join(f"-c {name}={value}" for name, value in _LIMITS.items())
    return {**_KEEPALIVES, "options": options, "application_name": APPLICATION}


async def open_pool(
    dsn: str | None = None,
    *,
    min_size: int = 1,
    max_size: int = 8,
    timeout: float = 30.0,
    migrate_schema: bool = True,
) -> AsyncConnectionPool[AsyncConnection[Any]]:
    """An open pool on the database, the schema ``council`` migrated to this version;
    ``StateError`` naming the server (never the password) when it cannot be reached."""
    target = resolve_dsn(dsn)
    pool: AsyncConnectionPool[AsyncConnection[Any]] = AsyncConnectionPool(
        target,
        min_size=min_size,
        max_size=max_size,
        timeout=timeout,
        # Autocommit: a read outside a transaction is one round trip, with no implicit
        # transaction to roll back when it goes back to the pool (``core``).
        kwargs={**connection_kwargs(), "autocommit": True},
        open=False,
        name="council",
    )
    try:
        # Connect once directly first: a pool that cannot connect only times out, and the
        # server's own reason (no such database, authentication failed) is what helps.
        async with await AsyncConnection.connect(
            target, autocommit=True, **connection_kwargs()
        ) as conn:
            if migrate_schema:
                await migrate(conn)
        await pool.open(wait=True, timeout=timeout)
    except (psycopg.OperationalError, PoolTimeout) as exc:
        await pool.close()
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"cannot reach the state database {describe(target)}: {reason}") from None
    except BaseException:
        await pool.close()
        raise
    return pool
