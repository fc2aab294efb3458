"""``council web [FILE]``: the run as one live page in a browser (``orchestrator.web``).

FILE is found as ``status`` finds it (``status.run_finder``: the run last started from this
directory or one above it, else the ``.council/state`` of the repository you stand in). The
server listens on 127.0.0.1 unless ``--host`` says otherwise (a team's machine), always
behind the one-time token printed in its URL; it serves until Ctrl-C. Starlette and uvicorn
come with the ``web`` extra; without them the command names it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.cli.status import run_finder
from orchestrator.errors import UsageError

__all__ = ["WEB_EXTRA", "web"]

WEB_EXTRA = "pip install 'cli-council[web]'"


def web(
    file: Annotated[
        Path | None, typer.Argument(help="Run config (default: the run meant here, as status).")
    ] = None,
    host: Annotated[
        str, typer.Option("--host", help="Address to listen on (a team's: 0.0.0.0).")
    ] = "127.0.0.1",
    port: Annotated[int, typer.Option("--port", help="Port (0: any free one).")] = 8765,
) -> None:
    """Serve the run as one live page: tasks, collisions, pull requests, spend, actions."""
    try:
        from orchestrator.web.serve import serve_web
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("starlette", "uvicorn"):
            raise UsageError(f"council web needs the `web` extra: {WEB_EXTRA}") from None
        raise
    if not 0 <= port <= 65535:
        raise UsageError(f"--port {port} is no port (0 to 65535)")
    state_dir = events = config = None
    if file is None:
        found = run_finder.find_run(Path.cwd())
        console.print_progress(f"web: {found.how}")
        file, state_dir, events = found.config, found.state_dir, found.events
    if file is not None:
        from orchestrator.run.goal_hold import goal_config  # a goal's config: its plan held

        config = goal_config(file)

    def ready(url: str) -> None:
        if not _loopback(host):  # said first: the URL is what a reader acts on
            console.print_warning(
                f"--host {host}: the page and its token go over plain HTTP, readable on the "
                "way; for a team, reach it through an SSH tunnel or a TLS proxy"
            )
        console.print_success(f"council web serves the run at {url}")
        console.print_progress("open that URL (the token is in it); Ctrl-C stops the server")

    try:
        event_loop.run(
            lambda: serve_web(
                config, ready, host=host, port=port, state_dir=state_dir, events=events
            )
        )
    except KeyboardInterrupt:
        raise typer.Exit(0) from None


def _loopback(host: str) -> bool:
    """Is ``host`` this machine's loopback (the token never leaves the machine)?"""
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
