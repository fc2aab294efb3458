"""``network: model``: the allow-list HTTP proxy that is a confined CLI's only way out.

Under ``network: model`` the CLI's network namespace has no route anywhere (bubblewrap's
``--unshare-net``: its own loopback alone). The one way out is this proxy, which the
orchestrator serves through a relay (``orchestrator.sandbox.relay``) at ``127.0.0.1:<PORT>``
inside, named to the CLI by ``HTTPS_PROXY``, ``HTTP_PROXY`` and ``ALL_PROXY``:

- ``CONNECT host:port`` (what an HTTPS client sends through a proxy) is carried to
  ``host:port`` only when that pair is on the allow-list (the adapter's API hosts and the
  endpoint its options name, ``orchestrator.runner.endpoints``); the TLS inside is the CLI's
  and the server's, untouched;
- a plain HTTP request in absolute form (``GET http://host:port/...``, for an ``http://``
  endpoint) is carried to ``host:port`` on the same terms, and the connection stays with that
  host whatever the CLI sends next on it;
- anything else gets ``403 Forbidden`` (a host not allowed, and any other method) or ``400``
  (not HTTP), and ``on_refused`` hears the host, which the CLI's log says.

So a CLI that ignores the proxy variables has no network at all: the setting holds by
construction, whatever the CLI does; the only way it fails is a CLI that cannot reach its
model (``council doctor`` says which CLIs honour the variables). Names are resolved by the
orchestrator, outside; the namespace has no DNS.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from urllib.parse import urlsplit

import anyio
import anyio.abc

from orchestrator.sandbox.relay import pipe

__all__ = ["PORT", "Proxy", "proxy_env"]

log = logging.getLogger(__name__)

PORT = 3128  # inside the CLI's own namespace: its loopback is empty, any port is free
_HEAD_LIMIT = 16384
_HEAD_TIMEOUT = 30.0
_CONNECT_TIMEOUT = 15.0


def proxy_env(port: int, direct: Iterable[str] = ()) -> dict[str, str]:
    """The variables that send a CLI's requests through the proxy at ``127.0.0.1:port``;
    ``direct`` (its relayed loopback endpoints) bypass it (``NO_PROXY``)."""
    url = f"http://127.0.0.1:{port}"
    bypass = ",".join(dict.fromkeys(["localhost", "127.0.0.1", "::1", *direct]))
    env: dict[str, str] = {"NODE_USE_ENV_PROXY": "1"}  # node's own fetch, 24.5 and later
    for name in ("HTTPS_PROXY", "HTTP_PROXY", "ALL_PROXY"):
        env[name] = env[name.lower()] = url
    env["NO_PROXY"] = env["no_proxy"] = bypass
    return env


@dataclass
class Proxy:
    """The proxy's answer to one connection (a relay's route): ``allowed`` are
    ``(host, port)`` pairs, hosts lower case."""

    allowed: frozenset[tuple[str, int]]
    on_refused: Callable[[str], None] = field(default=lambda _target: None)

    async def __call__(self, inside: anyio.abc.SocketStream) -> None:
        head = await _read_head(inside)
        if head is None:
            return
        request = _parse(head)
        if request is None:
            await _reply(inside, 400, "Bad Request")
            return
        method, host, port = request
        target = f"{host}:{port}"
        if (host, port) not in self.allowed:
            log.warning("network: model: refused %s %s", method, target)
            self.on_refused(f"{method} {target}")
            await _reply(inside, 403, "Forbidden")
            return
        try:
            with anyio.fail_after(_CONNECT_TIMEOUT):
                outside = await anyio.connect_tcp(host, port)
        except (OSError, TimeoutError) as exc:
            log.info("network: model: %s unreachable: %s", target, exc)
            await _reply(inside, 502, "Bad Gateway")
            return
        async with outside:
            if method == "CONNECT":
                await inside.send(b"HTTP/1.1 200 Connection established\r\n\r\n")
                rest = head[head.index(b"\r\n\r\n") + 4 :]
            else:
                rest = head  # the request goes on as the CLI sent it
            if rest:
                await outside.send(rest)
            await pipe(inside, outside)


async def _read_head(stream: anyio.abc.SocketStream) -> bytes | None:
    """The request's head (and whatever came after it); None when the CLI went away."""
    data = b""
    with anyio.move_on_after(_HEAD_TIMEOUT):
        while b"\r\n\r\n" not in data:
            if len(data) > _HEAD_LIMIT:
                await _reply(stream, 431, "Request Header Fields Too Large")
                return None
            try:
                data += await stream.receive(4096)
            except (anyio.EndOfStream, anyio.BrokenResourceError, OSError):
                return None
        return data
    return None


def _parse(head: bytes) -> tuple[str, str, int] | None:
    """``(method, host, port)`` of a proxy request's first line; None when it is not one."""
    line = head.split(b"\r\n", 1)[0].decode("latin-1")
    words = line.split()
    if len(words) != 3 or not words[2].startswith("HTTP/"):
        return None
    method, target = words[0].upper(), words[1]
    if method == "CONNECT":
        url = urlsplit(f"//{target}")
        default = 443
    else:
        url = urlsplit(target)
        if url.scheme.lower() != "http":
            return None
        default = 80
    try:
        host, port = url.hostname, url.port or default
    except ValueError:
        return None
    if not host:
        return None
    return method, host.lower().rstrip("."), port


async def _reply(stream: anyio.abc.SocketStream, code: int, reason: str) -> None:
    body = f"{code} {reason}: network: model allows only this CLI's model API\n".encode()
    head = f"HTTP/1.1 {code} {reason}\r\nContent-Type: text/plain\r\n"
    head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
    with contextlib.suppress(anyio.BrokenResourceError, anyio.ClosedResourceError, OSError):
        await stream.send(head.encode() + body)
