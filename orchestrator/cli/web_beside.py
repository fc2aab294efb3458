"""``--web`` on ``run``, ``resume`` and ``serve``: ``council web``'s server beside the run.

Once the run's session is on record (its ``run.started``, ``run.resumed`` or ``run.joined``
event), the server (``orchestrator.web.serve``) starts in a thread of its own with an event loop
of its own, so the run's loop never serves a page, and prints its URL with the token; it stops
when the run's command ends. Its store is opened apart from the run's, as any surface's. The
``web`` extra missing is said before the run starts.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Annotated

import typer

from orchestrator.cli import console, event_loop
from orchestrator.errors import UsageError

if TYPE_CHECKING:
    from orchestrator.council import Council
    from orchestrator.events.base import Event

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
def web_beside(council: Council, wanted: bool, port: int = 8765) -> Iterator[None]:
    """Serve ``council``'s run as a page on ``port`` while the block runs, when ``wanted``."""
    if not wanted:
        yield
        return
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
    stop = threading.Event()
    threads: list[threading.Thread] = []

    def ready(url: str) -> None:
        console.print_progress(f"council web serves the run at {url}")

    def serve() -> None:
        try:
            # A loop of this thread's own (event_loop leaves signals to the main thread's).
            event_loop.run(lambda: serve_web(council.config, ready, port=port, stop=stop))
        except Exception as exc:  # the page is an extra: the run goes on without it
            console.print_warning(f"council web stopped: {exc}")

    def started(event: Event) -> None:
        if str(event.type) in _STARTS and not threads:
            threads.append(threading.Thread(target=serve, name="council-web", daemon=True))
            threads[0].start()

    council.subscribe(started)
    try:
        yield
    finally:
        stop.set()
        for thread in threads:
            thread.join(timeout=10)
