"""Is the team's database reachable, and is its schema one this release can use?

``council doctor`` asks before a run does. It only reads: one connection, the version table of
``schema`` (``council.schema_migrations``), and nothing is migrated or created (the first run
does that).
"""

from __future__ import annotations

from dataclasses import dataclass

import psycopg
from psycopg import AsyncConnection

from orchestrator.errors import StateError
from orchestrator.state.postgres.connection import connection_kwargs, describe, resolve_dsn
from orchestrator.state.postgres.schema import MIGRATIONS, SCHEMA

__all__ = ["SchemaHealth", "schema_health"]

_TABLE = f"{SCHEMA}.schema_migrations"
_NEWEST = "SELECT max(version) FROM council.schema_migrations"


@dataclass(frozen=True)
class SchemaHealth:
    where: str  # the server and database, never the password
    version: int | None  # the newest migration applied; None when there is no schema yet
    known: int  # the newest migration this release has

    @property
    def usable(self) -> bool:
        """A run can use it: missing or older migrations are applied when it starts; a newer
        schema belongs to a newer release, whose records this one may misread."""
        return self.version is None or self.version <= self.known


async def schema_health(dsn: str | None = None) -> SchemaHealth:
    """The database ``dsn`` names (else ``COUNCIL_DATABASE_URL``, else libpq's defaults);
    ``StateError`` naming it when it cannot be reached or read."""
    target = resolve_dsn(dsn)
    where = describe(target)
    try:
        async with await AsyncConnection.connect(
            target, autocommit=True, **connection_kwargs()
        ) as conn:
            found = await (await conn.execute("SELECT to_regclass(%s)", (_TABLE,))).fetchone()
            version = None
            if found is not None and found[0] is not None:
                row = await (await conn.execute(_NEWEST)).fetchone()
                version = None if row is None or row[0] is None else int(row[0])
    except psycopg.Error as exc:
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise StateError(f"cannot reach the state database {where}: {reason}") from None
    return SchemaHealth(where=where, version=version, known=len(MIGRATIONS))
