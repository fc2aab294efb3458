"""``--web`` on ``run``, ``resume`` and ``serve``: ``council web``'s server beside the run.

Once the run's session is on record (its ``run.started``, ``run.resumed`` or ``run.joined``
event), the server (``orchestrator.web.serve``) starts in a thread of its own with an event loop
of its own, so the run's loop never serves a page, and prints its URL with the token; it stops
when the run's command ends. Its store is opened apart from the run's, as any surface's. The
``web`` extra missing is said before the run starts.
"""

from __future__ import annotations

import threading
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.config.run import RunConfig
    from orchestrator.council import Council
    from orchestrator.events.base import Event
    from orchestrator.web.guard import Keys

__all__ = ["WebOption", "WebPortOption", "web_beside"]

WebOption = Annotated[
    bool,
    typer.Option("--web", help="Serve the run as a live page too (council web), on 127.0.0.1."),
]
WebPortOption = Annotated[
    int, typer.Option("--web-port", help="The page's port with --web (0: any free one).")
]
_STARTS = ("run.started", "run.resumed", "run.joined")


@contextmanager
def web_beside(
    council: Council, wanted: bool, port: int = 8765, keys: Keys | None = None
) -> Iterator[None]:
    """Serve ``council``'s run as a page on ``port`` while the block runs, when ``wanted``
    (``keys``: the token and cookie of the page that served its goal's plan, kept)."""
    if not wanted:
        yield
        return
    serve_web = _server(port)
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def started(event: Event) -> None:
        if str(event.type) in _STARTS and not threads:
            threads.append(_thread(serve_web, council.config, port, keys, stop, "the run"))
            threads[0].start()

    council.subscribe(started)
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)


@contextmanager
def web_thread(config: RunConfig, port: int, keys: Keys | None, what: str) -> Iterator[None]:
    """The page of ``config`` served at once, in its own thread, while the block runs (a
    goal's plan held before any session exists, ``approve_cmd``)."""
    thread = _thread(_server(port), config, port, keys, stop := threading.Event(), what)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=10)


def _server(port: int) -> Callable[..., Awaitable[None]]:
    if not 0 <= port <= 65535:
        raise UsageError(f"--web-port {port} is no port (0 to 65535)")
    try:
        from orchestrator.web.serve import serve_web
    except ImportError as exc:
        if (exc.name or "").partition(".")[0] in ("starlette", "uvicorn"):
            raise UsageError(
                "--web needs the `web` extra: pip install 'cli-council[web]'"
            ) from None
        raise
    return serve_web


def _thread(
    serve_web: Callable[..., Awaitable[None]],
    config: RunConfig,
    port: int,
    keys: Keys | None,
    stop: threading.Event,
    what: str,
) -> threading.Thread:
    def ready(url: str) -> None:
        console.print_progress(f"council web serves {what} at {url}")

    def serve() -> None:
        try:
            # A loop of this thread's own (event_loop leaves signals to the main thread's).
            event_loop.run(lambda: serve_web(config, ready, port=port, stop=stop, keys=keys))
        except Exception as exc:  # the page is an extra: the run goes on without it
            console.print_warning(f"council web stopped: {exc}")

    return threading.Thread(target=serve, name="council-web", daemon=True)
