"""The server of ``council web``: uvicorn on one socket, the URL said once it listens.

``serve_web`` binds ``host`` (127.0.0.1 unless a team asks for another) and ``port`` (0: any
free one) itself (``listen``), so the URL it hands ``ready`` names the real port, with the
token in it; then uvicorn serves the guarded application until SIGINT or SIGTERM. A goal's
plan held for an answer is served alone first, and the run's page then takes the same socket
and token.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.to_thread
import uvicorn

from orchestrator.errors import UsageError
from orchestrator.web.app import make_app, plan_app
from orchestrator.web.board import Board
from orchestrator.web.guard import Guard, Keys
from orchestrator.web.listen import bind, url_of
from orchestrator.web.plan_view import plan_pending
from orchestrator.web.source import open_source

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig

__all__ = ["serve_web"]

_LOOK = 0.5  # seconds between two looks for the run of an answered plan


async def serve_web(
    config: RunConfig | None,
    ready: Callable[[str], None],
    *,
    host: str = "127.0.0.1",
    port: int = 0,
    state_dir: Path | None = None,
    events: Path | None = None,
    stop: threading.Event | None = None,
    keys: Keys | None = None,
) -> None:
    """Serve the run of ``config`` (or of the state directory ``state_dir``) until stopped:
    by a signal, or once ``stop`` is set (the server beside a run, in a thread of its own).
    While a goal's plan waits to be accepted and no run of its repository is recorded, the
    page shows the plan alone (``app.plan_app``). ``keys``: the token and cookie to keep (the
    plan's page, then the run's)."""
    keys, sock = keys or Keys(), None
    if config is not None and await _plan_alone(config, state_dir, events):
        sock = bind(host, port)
        port = sock.getsockname()[1]  # the one bound, for the run's page after the plan
        ready(url_of(sock, keys.token))
        with sock:
            answered = await _serve(plan_app(config.repo, keys), sock, stop, config)
        if not answered:
            return
        sock = bind(host, port)  # the same page, now the run's
    async with open_source(config, state_dir, events) as source:
        board = Board(source)
        await board.report()  # no run to show is said now, not in the browser
        if sock is None:
            sock = bind(host, port)
            ready(url_of(sock, keys.token))
        with sock:
            await _serve(make_app(board, keys), sock, stop)


async def _plan_alone(config: RunConfig, state_dir: Path | None, events: Path | None) -> bool:
    """Does a goal's plan wait while no run of its repository is recorded?"""
    if not await anyio.to_thread.run_sync(plan_pending, config.repo):
        return False
    return not await _run_recorded(config, state_dir, events)


async def _run_recorded(config: RunConfig, state_dir: Path | None, events: Path | None) -> bool:
    try:
        async with open_source(config, state_dir, events) as source:
            await Board(source).report()
    except UsageError:
        return False
    return True


async def _serve(
    app: Guard,
    sock: socket.socket,
    stop: threading.Event | None,
    plan_of: RunConfig | None = None,
) -> bool:
    """Serve ``app`` on ``sock`` until stopped; with ``plan_of``, until its held plan is
    answered and its run recorded too (True then: the run's page takes over)."""
    server = uvicorn.Server(
        uvicorn.Config(app, log_level="warning", lifespan="on", timeout_graceful_shutdown=2)
    )
    answered: list[bool] = []
    async with anyio.create_task_group() as group:
        if stop is not None:
            group.start_soon(_stop_when, stop, server)
        if plan_of is not None:
            group.start_soon(_until_run, plan_of, server, answered)
        await server.serve(sockets=[sock])
        group.cancel_scope.cancel()
    return bool(answered) and not (stop is not None and stop.is_set())


async def _until_run(config: RunConfig, server: uvicorn.Server, answered: list[bool]) -> None:
    while True:
        pending = await anyio.to_thread.run_sync(plan_pending, config.repo)
        if not pending and await _run_recorded(config, None, None):
            break
        await anyio.sleep(_LOOK)
    answered.append(True)
    server.should_exit = True


async def _stop_when(stop: threading.Event, server: uvicorn.Server) -> None:
    await anyio.to_thread.run_sync(stop.wait, abandon_on_cancel=True)
    server.should_exit = True
