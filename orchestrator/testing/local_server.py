"""An HTTP server on 127.0.0.1 in a thread of its own: what the test kit's fakes (the fake
model, the fake GitHub) are served by. ``LocalServer(handler, name)``; ``start()`` binds a free
port and serves (a second call does nothing), ``stop()`` shuts it down and joins its thread;
``port`` says where it listens."""

from __future__ import annotations

import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

__all__ = ["LocalServer"]


class _Server(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        """A client gone mid-answer (a run stopped, a process killed) is no error of the
        fake's: nothing printed for it; anything else as the standard server says it."""
        error = sys.exc_info()[1]
        if isinstance(error, ConnectionError):
            return
        super().handle_error(request, client_address)  # type: ignore[arg-type]


class LocalServer:
    def __init__(self, handler: type[BaseHTTPRequestHandler], name: str) -> None:
        self._handler = handler
        self._name = name
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def running(self) -> bool:
        return self._server is not None

    def start(self) -> None:
        if self._server is not None:
            return
        server = _Server(("127.0.0.1", 0), self._handler)
        server.daemon_threads = True
        self._server = server
        self._thread = threading.Thread(
            target=server.serve_forever, name=self._name, kwargs={"poll_interval": 0.05}
        )
        self._thread.daemon = True
        self._thread.start()

    def stop(self) -> None:
        server, thread = self._server, self._thread
        self._server = self._thread = None
        if server is not None:
            server.shutdown()
            server.server_close()
        if thread is not None:
            thread.join(timeout=5)

    def port(self, what: str) -> int:
        """The port it listens on; ``what`` names the fake in the error when it is stopped."""
        if self._server is None:
            raise RuntimeError(f"{what} is not running: start() it first")
        return int(self._server.server_address[1])
