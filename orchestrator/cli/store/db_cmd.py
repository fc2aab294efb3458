"""``council db up|down|url``: a throwaway local PostgreSQL server, to try team mode on one
machine with the server binaries it already has (``initdb``, ``pg_ctl``).

- ``up [DIR] [--port N] [--json]``: make the cluster in DIR on first use (``.council-db`` in
  the current directory by default) and start it, on a unix socket and, with ``--port``, on
  that loopback TCP port too; print the connection string and what to do with it. On a running
  cluster it only says so. A server that was killed (its pid file left behind) is started
  again; one whose socket a temporary-directory cleaner deleted is restarted.
- ``down [DIR] [--json]``: stop the server; its files stay. Stopping a stopped one is no error.
- ``url [DIR] [--tcp] [--json]``: only the connection string, for
  ``export COUNCIL_DATABASE_URL=$(council db url)``; exit 1 when the cluster is not running.

The cluster's one role trusts every local connection: it is for trying things out and for
tests. A team's shared server is its owner's, and its connection string goes in ``state.dsn``.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path
from typing import Annotated, Any

import typer

from orchestrator.cli import console, event_loop
from orchestrator.errors import RunError, UsageError
from orchestrator.state.postgres.cluster import LocalCluster, Started
from orchestrator.state.postgres.connection import DSN_VARIABLE

__all__ = ["DEFAULT_DIR", "app"]

DEFAULT_DIR = Path(".council-db")

app = typer.Typer(
    name="db",
    help="Start, stop and locate a throwaway local PostgreSQL server for team mode.",
    no_args_is_help=True,
    add_completion=False,
)

DirArg = Annotated[
    Path,
    typer.Argument(metavar="DIR", help="The cluster's directory (made on first use)."),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print the result as JSON.")]
PortOption = Annotated[
    int | None,
    typer.Option("--port", min=1, max=65535, help="Also listen on this loopback TCP port."),
]
_DONE = {
    Started.CREATED: "created and started",
    Started.STARTED: "started",
    Started.RESTARTED: "restarted (its socket had been deleted)",
    Started.RUNNING: "already running",
}


@app.command()
def up(
    directory: DirArg = DEFAULT_DIR, port: PortOption = None, as_json: JsonOption = False
) -> None:
    """Start the local PostgreSQL server in DIR, making it on first use."""
    cluster = LocalCluster(directory)
    if port is not None and cluster.running() and cluster.tcp_port() != port:
        now = cluster.tcp_port()
        raise UsageError(
            f"the PostgreSQL server of {cluster.directory} already runs "
            + (f"on port {now}" if now else "without a TCP port")
            + f": stop it first (`{_command('down', directory)}`) to listen on port {port}"
        )

    async def start() -> Started:
        with console.status() as say:
            return await cluster.up(port=port, progress=say)

    started = event_loop.run(start)
    if as_json:
        console.print_lines(json.dumps({**_describe(cluster), "action": str(started)}, indent=2))
        return
    where = f"its socket in {cluster.socket_dir}"
    tcp = cluster.tcp_port()
    if tcp is not None:
        where += f" and 127.0.0.1:{tcp}"
    console.print_success(
        f"PostgreSQL {cluster.version()} in {cluster.directory}: {_DONE[started]}, "
        f"listening on {where}"
    )
    console.print_lines(
        f"next: export {DSN_VARIABLE}={shlex.quote(cluster.url())}\n"
        "  (or put that URL in the run config as state.dsn, with state.backend: postgresql)\n"
        f"stop it with: {_command('down', directory)}"
    )


@app.command()
def down(directory: DirArg = DEFAULT_DIR, as_json: JsonOption = False) -> None:
    """Stop the local PostgreSQL server in DIR (its files stay)."""
    cluster = LocalCluster(directory)
    made = cluster.exists()
    stopped = event_loop.run(cluster.down) if made else False
    if as_json:
        action = "stopped" if stopped else "not running" if made else "no cluster"
        data = {"directory": str(cluster.directory), "action": action, "running": False}
        console.print_lines(json.dumps(data, indent=2))
    elif stopped:
        console.print_success(
            f"stopped the PostgreSQL server of {cluster.directory}; its files stay "
            f"(`{_command('up', directory)}` starts it again)"
        )
    elif made:
        console.print_lines(f"the PostgreSQL server of {cluster.directory} is not running")
    else:
        console.print_lines(f"no local PostgreSQL cluster in {cluster.directory}: nothing to stop")


@app.command()
def url(
    directory: DirArg = DEFAULT_DIR,
    tcp: Annotated[bool, typer.Option("--tcp", help="The loopback TCP URL.")] = False,
    as_json: JsonOption = False,
) -> None:
    """Print the connection string of the local PostgreSQL server in DIR."""
    cluster = LocalCluster(directory)
    chosen = cluster.tcp_url() if tcp else cluster.url()  # RunError when never started
    if not cluster.running():
        raise RunError(
            f"the PostgreSQL server of {cluster.directory} is not running: "
            f"start it with `{_command('up', directory)}`"
        )
    if chosen is None:
        raise RunError(
            f"the PostgreSQL server of {cluster.directory} listens on no TCP port: restart it "
            f"with `{_command('down', directory)} && {_command('up', directory)} --port N`"
        )
    if as_json:
        console.print_lines(json.dumps({"directory": str(cluster.directory), "url": chosen}))
    else:
        console.print_lines(chosen)


def _describe(cluster: LocalCluster) -> dict[str, Any]:
    return {
        "directory": str(cluster.directory),
        "running": cluster.running(),
        "version": cluster.version(),
        "url": cluster.url(),
        "tcp_url": cluster.tcp_url(),
        "socket_dir": str(cluster.socket_dir),
        "tcp_port": cluster.tcp_port(),
        "server_log": str(cluster.log),
        "dsn_variable": DSN_VARIABLE,
    }


def _command(verb: str, directory: Path) -> str:
    """The command line to run next, as short as it can be."""
    where = "" if directory == DEFAULT_DIR else f" {shlex.quote(str(directory))}"
    return f"council db {verb}{where}"
