"""The socket ``council web`` listens on, bound before the server starts, and its URL with the
one-time token (the port named is the one bound, 0 asked for any free one)."""

from __future__ import annotations

import socket

from orchestrator.errors import UsageError

__all__ = ["bind", "url_of"]


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host``:``port``; a ``UsageError`` naming both when it cannot."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as exc:
        sock.close()
        raise UsageError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    sock.listen(128)
    return sock


def url_of(sock: socket.socket, token: str) -> str:
    host, port = sock.getsockname()[:2]
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/?token={token}"
