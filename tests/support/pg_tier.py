"""The PostgreSQL test tier: a real server the fixtures start from the machine's own binaries
(``initdb``, ``pg_ctl``) through the product's own ``LocalCluster`` — no Docker, no mocks.

A test that needs it carries ``@pytest.mark.postgres`` (or uses ``pg_dsn``). Each test worker
starts one cluster for its whole run (a few seconds) and each test gets a database of its own,
copied from a template that is already migrated. Where the server binaries are missing these
tests are deselected with one line saying how to run them; with ``COUNCIL_REQUIRE_POSTGRES=1``
(CI) they are kept and fail instead.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import anyio
import psycopg
import pytest

from orchestrator.errors import RunError
from orchestrator.state.postgres.cluster import LocalCluster, find_server_binaries
from orchestrator.state.postgres.connection import DSN_VARIABLE
from orchestrator.state.postgres.schema import migrate
from tests.support import tiers
from tests.support.timing import patience

__all__ = ["REQUIRE_ENV", "TestDatabase", "deselect_missing"]

REQUIRE_ENV = "COUNCIL_REQUIRE_POSTGRES"
HOW_TO_RUN = (
    "install the PostgreSQL server (Debian: apt-get install postgresql) and run "
    "COUNCIL_REQUIRE_POSTGRES=1 .venv/bin/python -m pytest -m postgres"
)
TEMPLATE = "council_template"
# The tests' cluster does not wait for its disk (every test makes and drops a database, and a
# drop is a checkpoint): a server killed or restarted by a test still finds every commit in the
# machine's page cache, so nothing a test can see changes; only a crash of the machine itself,
# which no test makes, would lose what was not flushed. ``synchronous_commit`` is left as it
# is: a commit not yet written would be lost by a kill of the server, which tests make.
UNSYNCED = ("fsync = off", "full_page_writes = off")
_numbers = itertools.count(1)


def required() -> bool:
    return os.environ.get(REQUIRE_ENV) == "1"


def available() -> bool:
    try:
        find_server_binaries()
    except RunError:
        return False
    return True


def deselect_missing(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the ``postgres`` tests where the server binaries are missing, unless the tier
    is required."""
    if required() or available():
        return
    dropped = [item for item in items if item.get_closest_marker("postgres") is not None]
    if not dropped:
        return
    note = f"PostgreSQL tier: {len(dropped)} tests deselected (initdb/pg_ctl not found); "
    tiers.deselect(config, items, dropped, f"{note}to run them: {HOW_TO_RUN}")


class TestDatabase:
    """One worker's cluster, and fresh databases on it."""

    __test__ = False  # not a test class

    def __init__(self, cluster: LocalCluster) -> None:
        self.cluster = cluster

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.cluster.url("postgres"), autocommit=True)

    def fresh(self) -> str:
        """The URL of a new, empty, migrated database."""
        name = f"t{os.getpid()}_{next(_numbers)}"
        with self.admin() as conn:
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        return self.cluster.url(name)

    def restart(self) -> None:
        """Restart the server where it stands (``pg_ctl restart -m fast``): every connection
        is cut, as in a failover or a crash of the database. Its waits scale with the load
        (``patience``): a fast shutdown took over 60 s beside two suites and stress-ng on 2
        cores."""
        asyncio.run(self.cluster.restart(wait=patience(60)))

    def stop(self) -> None:
        """Stop the server (fast shutdown): the database is unreachable until ``start``."""
        asyncio.run(self.cluster.down())

    def start(self) -> None:
        asyncio.run(self.cluster.up())

    def drop(self, url: str) -> None:
        name = url.split("/")[-1].split("?")[0]
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def start_server() -> Iterator[TestDatabase]:
    """A cluster in a directory the server's user can reach (as root the server runs as
    ``postgres``, and pytest's own temporary directories are private to root)."""
    directory = Path(tempfile.mkdtemp(prefix="council-pgtest-"))
    directory.chmod(0o755)
    cluster = LocalCluster(directory / "cluster")
    try:
        asyncio.run(cluster.up())
        with psycopg.connect(cluster.url("postgres"), autocommit=True) as conn:
            for setting in UNSYNCED:
                conn.execute(f"ALTER SYSTEM SET {setting}")
            conn.execute("SELECT pg_reload_conf()")
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        asyncio.run(_migrate(cluster.url(TEMPLATE)))
        yield TestDatabase(cluster)
    finally:
        try:
            asyncio.run(cluster.down())
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn)


def without_libpq_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    """A developer's own ``PG*`` variables and ``COUNCIL_DATABASE_URL`` must not lead a test
    to their database."""
    for name in list(os.environ):
        if name.startswith("PG") or name == DSN_VARIABLE:
            monkeypatch.delenv(name)


async def until(check: Callable[[], bool], seconds: float = 5.0) -> None:
    """Wait until ``check()`` holds (a notice from another store arrived), at most ``seconds``."""
    with anyio.fail_after(patience(seconds)):
        while not check():
            await anyio.sleep(0.005)
