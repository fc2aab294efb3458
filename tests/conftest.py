"""Shared fixtures: tests see only the plugins they ask for; ``slow`` soak variants run only
with ``--soak`` (``.venv/bin/python -m pytest --soak -m slow``); ``real_cli`` tests only where
their CLI is installed, or with ``COUNCIL_REQUIRE_REAL_CLIS=1`` (see ``real_clis``);
``postgres`` tests (any test using ``pg_dsn``) only where the PostgreSQL server binaries are,
or with ``COUNCIL_REQUIRE_POSTGRES=1`` (see ``pg_tier``); ``browser`` tests only where
Debian's chromium and playwright are, or with ``COUNCIL_REQUIRE_BROWSER=1`` (``browser_tier``).
Every safety-net timeout, pytest's per-test one included, is scaled for a loaded machine
(``timing.patience``, ``COUNCIL_TEST_PATIENCE``); Hypothesis runs under the ``council``
profile, which has no deadline and no health check that measures the machine's speed.

The suite's processes start with Ctrl-C at its default, as a terminal's foreground command
does, however the suite itself was started: a shell without job control starts a background
job (``pytest ... &`` in a script) with SIGINT ignored, and every process it starts inherits
that, so a test that stops ``council`` with a SIGINT would find it ignored."""

from __future__ import annotations

import atexit
import os
import shutil
import signal
import tempfile
from collections.abc import AsyncIterator, Generator, Iterator
from typing import TYPE_CHECKING

import pytest
from hypothesis import HealthCheck, settings

from orchestrator.plugins import host as plugins
from tests.support import (
    browser_tier,
    known_secrets,
    pg_tier,
    plugin_cache,
    real_clis,
    sandbox_tier,
    tiers,
    timing,
    zygote,
)

if TYPE_CHECKING:
    from orchestrator.state.postgres.store import PostgresStateStore

if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)  # see the module doc

# `council run` remembers where it was started, under the user's state directory
# (orchestrator.cli.status.run_finder): the tests' runs, in process or not, keep theirs in a
# directory of their own, never the developer's. Set before any test module copies the environment.
_STATE_HOME = tempfile.mkdtemp(prefix="council-tests-state-")
os.environ["XDG_STATE_HOME"] = _STATE_HOME
atexit.register(shutil.rmtree, _STATE_HOME, True)

# The `council` processes the tests start are forked from one that imported the command once
# (tests/support/zygote.py says when a start still goes through exec, and why it is the same).
zygote.install()

# Hypothesis measures the machine twice by default: a 200 ms deadline per example and the
# "input generation is slow" health check. Neither says anything about the product; both trip
# on a loaded machine. Tests that set their own ``settings`` still inherit the rest of this.
settings.register_profile(
    "council", deadline=None, suppress_health_check=[HealthCheck.too_slow], print_blob=True
)
settings.load_profile("council")

# Held here because a test may monkeypatch plugins.default_plugins itself.
_default_plugins = plugins.default_plugins


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--soak", action="store_true", help="also run the slow soak variants (marked slow)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if {"pg_dsn", "pg_server"} & set(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.postgres)
    real_clis.deselect_missing(config, items)  # the real-CLI tier without its CLIs installed
    pg_tier.deselect_missing(config, items)  # the PostgreSQL tier without its server
    sandbox_tier.deselect_missing(config, items)  # the sandbox tier without bubblewrap
    browser_tier.deselect_missing(config, items)  # the browser tier without chromium
    # Deselected, not skipped: the default run reports them as not collected for this run,
    # so a soak test is never counted as passing when it did not run.
    if config.getoption("--soak"):
        return
    kept = [item for item in items if item.get_closest_marker("slow") is None]
    if len(kept) != len(items):
        config.hook.pytest_deselected(items=[i for i in items if i not in kept])
        items[:] = kept
    items[:] = heavy_first(items)


# Directories whose tests each drive whole runs (many processes, seconds a test).
_HEAVY_DIRS = frozenset({"e2e", "real_cli", "coordination", "forge", "web"})
_HEAVY_MARKS = ("real_cli", "postgres", "browser")


def heavy_first(items: list[pytest.Item]) -> list[pytest.Item]:
    """The modules that drive whole runs first, the rest after, each module's tests kept
    together and in their order (module fixtures are set up once a worker). The workers
    (``--dist worksteal``, pyproject's addopts) then end on many short tests that fill the
    last minutes, never on a long one that starts last: in collection order the suite ended
    on the browser tests and a 26 s worktree stress test, its last 4.5 minutes with one core
    of two idle (2 CPUs, 3 workers)."""
    modules: dict[str, list[pytest.Item]] = {}
    for item in items:
        modules.setdefault(item.nodeid.split("::", 1)[0], []).append(item)

    def heavy(path: str) -> bool:
        parts = path.split("/")
        if len(parts) > 2 and parts[1] in _HEAVY_DIRS:
            return True
        return any(i.get_closest_marker(m) for i in modules[path] for m in _HEAVY_MARKS)

    order = sorted(modules, key=lambda path: not heavy(path))  # stable: collection order kept
    return [item for path in order for item in modules[path]]


@pytest.hookimpl(tryfirst=True)
def pytest_xdist_auto_num_workers(config: pytest.Config) -> int | None:
    """``-n auto`` (pyproject's addopts): one worker more than the CPUs this process may use,
    still at most ``--maxprocesses`` (4). Many tests wait rather than compute (a lease to
    lapse, a paused workstation, a server to come back): on 2 CPUs the suite kept them 77 to
    80 % busy at two workers, and three took it from 1,619 s to 1,447 s (one run each, same
    code). ``PYTEST_XDIST_AUTO_NUM_WORKERS`` still sets the number (pytest-xdist reads it)."""
    if os.environ.get("PYTEST_XDIST_AUTO_NUM_WORKERS"):
        return None
    return len(os.sched_getaffinity(0)) + 1


def pytest_report_header(config: pytest.Config) -> str:
    scale = timing.factor()
    return f"safety-net timeouts x{scale:.1f} ({timing.PATIENCE_ENV} or the load per core)"


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item: pytest.Item) -> Generator[None, None, None]:
    """pytest-timeout's limit for this test (the ini's, or the test's own ``timeout`` mark)
    times ``timing.factor()`` as the test starts: a safety net for a hung test, never a
    bound on a slow machine. Outermost, so pytest-timeout reads the scaled limit."""
    scale = timing.factor()
    base = item.stash.setdefault(_BASE_TIMEOUT, _timeout_of(item))
    if base > 0:
        item.add_marker(pytest.mark.timeout(base * scale), append=False)
    yield


_BASE_TIMEOUT = pytest.StashKey[float]()


def _timeout_of(item: pytest.Item) -> float:
    mark = item.get_closest_marker("timeout")
    if mark is not None and mark.args:
        return float(mark.args[0])
    return float(item.config.getini("timeout") or 0)


def pytest_terminal_summary(
    terminalreporter: pytest.TerminalReporter, config: pytest.Config
) -> None:
    tiers.report_deselected(config, terminalreporter)


@pytest.fixture(autouse=True)
def secrets_of_this_test() -> Iterator[None]:
    # The secrets a test's code hands to a child are remembered for its own length only, not
    # for every later test of the worker (tests/support/known_secrets.py says why).
    with known_secrets.kept_to_one_test():
        yield


@pytest.fixture(autouse=True)
def no_third_party_plugins(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    # A developer's installed plugins must not change what the tests see; a test that wants
    # third-party plugins passes its own entry points and environment to load_plugins.
    monkeypatch.setenv(plugins.DISABLE_ENV, "1")
    monkeypatch.delenv(plugins.ALLOW_ENV, raising=False)
    # Loaded once per process under these conditions, as long as they hold (plugin_cache).
    monkeypatch.setattr(plugins, "load_plugins", plugin_cache.load_plugins)
    _default_plugins.cache_clear()
    yield
    _default_plugins.cache_clear()


@pytest.fixture(scope="session")
def pg_server() -> Iterator[pg_tier.TestDatabase]:
    """This worker's PostgreSQL cluster (started once, stopped at the end)."""
    yield from pg_tier.start_server()


@pytest.fixture
def pg_dsn(pg_server: pg_tier.TestDatabase, monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The URL of a fresh migrated database of its own for this test."""
    pg_tier.without_libpq_defaults(monkeypatch)
    url = pg_server.fresh()
    yield url
    pg_server.drop(url)


@pytest.fixture
async def stores(pg_dsn: str) -> AsyncIterator[tuple[PostgresStateStore, PostgresStateStore]]:
    """Two workstations' stores on one fresh database."""
    from orchestrator.state.postgres.store import PostgresStateStore

    async with (
        await PostgresStateStore.connect(pg_dsn) as a,
        await PostgresStateStore.connect(pg_dsn) as b,
    ):
        yield a, b
