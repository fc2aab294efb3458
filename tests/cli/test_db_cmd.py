"""``council db up|down|url`` on the machine's real PostgreSQL server binaries: the URL it
prints connects, each command is idempotent, a killed server (its pid file left behind) and a
deleted socket are recovered from, and each failure is one line with the right exit code."""

from __future__ import annotations

import asyncio
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from typer.testing import CliRunner, Result

from orchestrator.cli.app import app
from orchestrator.state.postgres import cluster as cluster_module
from orchestrator.state.postgres.cluster import LocalCluster
from tests.support.timing import patience

COUNCIL = [sys.executable, "-m", "orchestrator.cli.app"]
ENV = {**os.environ, "COUNCIL_DISABLE_PLUGINS": "1"}


def invoke(*args: object) -> Result:
    return CliRunner().invoke(app, ["db", *map(str, args)])


def council(*args: object) -> subprocess.CompletedProcess[str]:
    """``council db ARGS`` as a real process (the server must outlive it)."""
    return subprocess.run(
        [*COUNCIL, "db", *map(str, args)],
        capture_output=True,
        text=True,
        env=ENV,
        timeout=patience(60),
        check=False,
    )


def select_one(url: str) -> int:
    with psycopg.connect(url, connect_timeout=10) as conn:
        row = conn.execute("SELECT 1").fetchone()
    assert row is not None
    return int(row[0])


def exported_url(stdout: str) -> str:
    """The URL of the ``export COUNCIL_DATABASE_URL=...`` line, unquoted as a shell would."""
    line = next(line for line in stdout.splitlines() if "export COUNCIL_DATABASE_URL=" in line)
    words = shlex.split(line.removeprefix("next: "))
    assert words[0] == "export"
    name, value = words[1].split("=", 1)
    assert name == "COUNCIL_DATABASE_URL"
    return value


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def wait_gone(pid: int) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return
        time.sleep(0.05)
    raise AssertionError(f"process {pid} still exists 10 s after SIGKILL")


@pytest.fixture
def db_dir() -> Iterator[Path]:
    """A cluster directory the ``postgres`` user can reach when the tests run as root
    (pytest's own temporary directories are private to root); stopped and removed after."""
    parent = Path(tempfile.mkdtemp(prefix="council-dbtest-"))
    parent.chmod(0o755)
    directory = parent / "db"
    try:
        yield directory
    finally:
        cluster = LocalCluster(directory)
        try:
            asyncio.run(cluster.down())
        finally:
            shutil.rmtree(parent, ignore_errors=True)
            shutil.rmtree(cluster.socket_dir, ignore_errors=True)


@pytest.mark.postgres
def test_up_prints_a_url_that_connects_and_up_again_says_it_runs(db_dir: Path) -> None:
    first = council("up", db_dir)
    assert first.returncode == 0, first.stderr
    assert "created and started" in first.stdout
    assert "initdb" in first.stderr  # the progress of the long step
    url = exported_url(first.stdout)
    assert url.startswith("postgresql://council@/council?host=")
    assert select_one(url) == 1  # the server outlived the command that started it

    printed = council("url", db_dir)  # as in export COUNCIL_DATABASE_URL=$(council db url)
    assert printed.returncode == 0, printed.stderr
    assert printed.stdout == url + "\n"

    again = invoke("up", db_dir)
    assert again.exit_code == 0, again.stderr
    assert "already running" in again.stdout
    assert exported_url(again.stdout) == url
    assert again.stderr == ""  # nothing long was done


@pytest.mark.postgres
def test_url_tcp_with_a_port(db_dir: Path) -> None:
    port = free_port()
    started = invoke("up", db_dir, "--port", port)
    assert started.exit_code == 0, started.stderr
    assert f"127.0.0.1:{port}" in started.stdout

    tcp = invoke("url", db_dir, "--tcp")
    assert tcp.exit_code == 0, tcp.stderr
    assert tcp.stdout == f"postgresql://council@127.0.0.1:{port}/council\n"
    assert select_one(tcp.stdout.strip()) == 1
    on_socket = invoke("url", db_dir)
    assert f"&port={port}" in on_socket.stdout
    assert select_one(on_socket.stdout.strip()) == 1

    # Another port while it runs is refused before anything changes.
    other = invoke("up", db_dir, "--port", free_port())
    assert other.exit_code == 2
    assert f"already runs on port {port}" in other.stderr
    assert len(other.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_url_tcp_without_a_port_is_refused(db_dir: Path) -> None:
    assert invoke("up", db_dir).exit_code == 0
    tcp = invoke("url", db_dir, "--tcp")
    assert tcp.exit_code == 1
    assert tcp.stdout == ""
    assert "listens on no TCP port" in tcp.stderr
    assert len(tcp.stderr.strip().splitlines()) == 1


@pytest.mark.postgres
def test_down_twice_then_url_fails(db_dir: Path) -> None:
    assert invoke("up", db_dir).exit_code == 0
    url = invoke("url", db_dir).stdout.strip()

    stopped = invoke("down", db_dir)
    assert stopped.exit_code == 0, stopped.stderr
    assert "stopped the PostgreSQL server" in stopped.stdout
    with pytest.raises(psycopg.OperationalError):
        select_one(url)
    assert (db_dir / "data" / "PG_VERSION").is_file()  # its files stay
    assert not LocalCluster(db_dir).socket_dir.exists()  # not its socket directory in /tmp

    again = invoke("down", db_dir)
    assert again.exit_code == 0
    assert "is not running" in again.stdout

    after = invoke("url", db_dir)
    assert after.exit_code == 1
    assert after.stdout == ""
    assert after.stderr.strip() == (
        f"error: the PostgreSQL server of {db_dir} is not running: "
        f"start it with `council db up {db_dir}`"
    )

    restarted = invoke("up", db_dir)
    assert restarted.exit_code == 0, restarted.stderr
    assert ": started, listening" in restarted.stdout
    assert select_one(exported_url(restarted.stdout)) == 1


@pytest.mark.postgres
def test_up_after_the_server_was_killed_recovers(db_dir: Path) -> None:
    assert invoke("up", db_dir).exit_code == 0
    cluster = LocalCluster(db_dir)
    pid = cluster.server_pid()
    assert pid is not None
    os.kill(pid, signal.SIGKILL)
    wait_gone(pid)
    assert (cluster.data / "postmaster.pid").is_file()  # left behind by the killed server

    # The stale pid file is not taken for a running server...
    assert invoke("url", db_dir).exit_code == 1
    # ...and up starts it again (crash recovery on the server's side).
    revived = invoke("up", db_dir)
    assert revived.exit_code == 0, revived.stderr
    assert ": started, listening" in revived.stdout
    assert select_one(exported_url(revived.stdout)) == 1
    assert cluster.server_pid() not in (None, pid)


@pytest.mark.postgres
def test_up_restarts_a_server_whose_socket_was_deleted(db_dir: Path) -> None:
    assert invoke("up", db_dir).exit_code == 0
    cluster = LocalCluster(db_dir)
    shutil.rmtree(cluster.socket_dir)  # a tmp cleaner, while the server runs
    assert not cluster.running()

    revived = invoke("up", db_dir)
    assert revived.exit_code == 0, revived.stderr
    assert "restarted (its socket had been deleted)" in revived.stdout
    assert select_one(exported_url(revived.stdout)) == 1


@pytest.mark.postgres
def test_json_of_each_command(db_dir: Path) -> None:
    port = free_port()
    up = invoke("up", db_dir, "--port", port, "--json")
    assert up.exit_code == 0, up.stderr
    data = json.loads(up.stdout)
    assert data["action"] == "created"
    assert data["running"] is True
    assert data["directory"] == str(db_dir)
    assert data["tcp_port"] == port
    assert data["tcp_url"] == f"postgresql://council@127.0.0.1:{port}/council"
    assert select_one(data["url"]) == 1

    assert json.loads(invoke("up", db_dir, "--json").stdout)["action"] == "running"
    url = json.loads(invoke("url", db_dir, "--json").stdout)
    assert url == {"directory": str(db_dir), "url": data["url"]}
    tcp = json.loads(invoke("url", db_dir, "--tcp", "--json").stdout)
    assert tcp["url"] == data["tcp_url"]

    down = json.loads(invoke("down", db_dir, "--json").stdout)
    assert down == {"directory": str(db_dir), "action": "stopped", "running": False}
    again = json.loads(invoke("down", db_dir, "--json").stdout)
    assert again["action"] == "not running"


@pytest.mark.postgres
def test_a_port_in_use_is_one_line_and_exit_1(db_dir: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = invoke("up", db_dir, "--port", port)
    assert result.exit_code == 1
    assert result.stderr.strip() == (
        f"error: cannot listen on 127.0.0.1:{port}: Address already in use "
        "(another server uses it?): choose another port with --port"
    )


def test_no_cluster_in_the_directory(tmp_path: Path) -> None:
    missing = tmp_path / "nothing"
    url = invoke("url", missing)
    assert url.exit_code == 1
    assert url.stderr.strip() == (
        f"error: no local PostgreSQL cluster is set up in {missing}: "
        f"run `council db up {missing}` first"
    )
    down = invoke("down", missing)
    assert down.exit_code == 0
    assert down.stdout.strip() == f"no local PostgreSQL cluster in {missing}: nothing to stop"
    assert not missing.exists()


def test_missing_server_binaries_are_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty-bin"))
    monkeypatch.setattr(cluster_module, "_SEARCH", (str(tmp_path / "nowhere" / "*"),))
    result = invoke("up", tmp_path / "db")
    assert result.exit_code == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "the PostgreSQL server binaries (initdb, pg_ctl) were not found" in lines[0]
    assert "Debian: postgresql" in lines[0]


@pytest.mark.postgres
@pytest.mark.skipif(os.geteuid() != 0, reason="only root hands the server to `postgres`")
def test_as_root_a_directory_postgres_cannot_reach_is_named() -> None:
    private = Path(tempfile.mkdtemp(prefix="council-dbtest-private-"))  # mode 0700
    try:
        result = invoke("up", private / "db")
        assert result.exit_code == 1
        assert result.stderr.strip().splitlines() == [
            f"error: as root the PostgreSQL server runs as postgres, which cannot enter "
            f"{private} (mode 700) to reach {private / 'db'}: use a directory every user can "
            "reach (such as one under /srv or /tmp), or run as an ordinary user"
        ]
        assert not (private / "db").exists()  # refused before anything was made
    finally:
        shutil.rmtree(private)
