"""The allow-list proxy of ``network: model`` (``orchestrator.sandbox.proxy``) and the relay's
byte pipe, on real sockets of this process: what is allowed is carried both ways, byte for
byte; anything else gets a 403 (the refusal heard, naming the host) or a 400, and nothing is
connected."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

import anyio
import anyio.abc
import pytest

from orchestrator.sandbox.proxy import Proxy, proxy_env
from orchestrator.sandbox.relay import pipe

pytestmark = pytest.mark.anyio


Handler = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@asynccontextmanager
async def server(handler: Handler) -> AsyncIterator[int]:
    """``handler`` served on a loopback port (yielded), each connection closed after it, as
    the relay does."""

    async def closing(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            await handler(stream)

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1", local_port=0)
    port = listener.extra(anyio.abc.SocketAttribute.local_port)
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, closing)
        yield port
        group.cancel_scope.cancel()


class Echo:
    """A service that says who it is, then echoes every byte back until the client's EOF."""

    def __init__(self, name: bytes) -> None:
        self.name = name
        self.connections = 0

    async def __call__(self, stream: anyio.abc.SocketStream) -> None:
        self.connections += 1
        async with stream:
            await stream.send(self.name)
            while True:
                try:
                    await stream.send(await stream.receive())
                except (anyio.EndOfStream, anyio.BrokenResourceError):
                    return


async def head_of(stream: anyio.abc.SocketStream) -> tuple[bytes, bytes]:
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, rest = data.split(b"\r\n\r\n", 1)
    return head, rest


async def receive_exactly(stream: anyio.abc.SocketStream, size: int, got: bytes = b"") -> bytes:
    while len(got) < size:
        got += await stream.receive()
    return got


async def test_connect_to_an_allowed_host_is_carried_both_ways() -> None:
    api = Echo(b"api\n")
    async with server(api) as api_port:
        proxy = Proxy(frozenset({("127.0.0.1", api_port)}))
        async with server(proxy) as proxy_port:
            stream = await anyio.connect_tcp("127.0.0.1", proxy_port)
            async with stream:
                await stream.send(f"CONNECT 127.0.0.1:{api_port} HTTP/1.1\r\n\r\n".encode())
                head, rest = await head_of(stream)
                assert head.startswith(b"HTTP/1.1 200 ")
                assert await receive_exactly(stream, 4, rest) == b"api\n"
                payload = os.urandom(3 * 1024 * 1024)  # a streamed answer's size, both ways
                async with anyio.create_task_group() as group:
                    group.start_soon(stream.send, payload)
                    echoed = await receive_exactly(stream, len(payload))
                assert echoed == payload
    assert api.connections == 1


@pytest.mark.parametrize(
    "request_line",
    [
        "CONNECT {host}:{other} HTTP/1.1",  # the allowed host, another port
        "CONNECT elsewhere.example:443 HTTP/1.1",  # another host
        "GET http://elsewhere.example/ HTTP/1.1",  # plain HTTP to another host
        "DELETE http://{host}:{other}/ HTTP/1.1",
    ],
)
async def test_anything_not_allowed_gets_403_and_is_heard(request_line: str) -> None:
    api = Echo(b"api\n")
    refused: list[str] = []
    async with server(api) as api_port:
        proxy = Proxy(frozenset({("127.0.0.1", api_port)}), refused.append)
        async with server(proxy) as proxy_port:
            line = request_line.format(host="127.0.0.1", other=api_port + 1)
            stream = await anyio.connect_tcp("127.0.0.1", proxy_port)
            async with stream:
                await stream.send(f"{line}\r\nHost: x\r\n\r\n".encode())
                head, _ = await head_of(stream)
    assert head.startswith(b"HTTP/1.1 403 "), head
    target = line.split()[1]
    assert refused and target.split("//")[-1].split("/")[0] in refused[0], refused
    assert api.connections == 0


async def test_plain_http_to_an_allowed_endpoint_goes_on_as_sent() -> None:
    seen: list[bytes] = []

    async def origin(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            head, _ = await head_of(stream)
            seen.append(head)
            await stream.send(b"HTTP/1.1 204 No Content\r\nConnection: close\r\n\r\n")

    async with server(origin) as port:
        proxy = Proxy(frozenset({("127.0.0.1", port)}))
        async with server(proxy) as proxy_port:
            stream = await anyio.connect_tcp("127.0.0.1", proxy_port)
            async with stream:
                request = f"GET http://127.0.0.1:{port}/v1/models HTTP/1.1\r\nHost: x\r\n\r\n"
                await stream.send(request.encode())
                head, _ = await head_of(stream)
    assert head.startswith(b"HTTP/1.1 204"), head
    assert seen == [f"GET http://127.0.0.1:{port}/v1/models HTTP/1.1\r\nHost: x".encode()]


@pytest.mark.parametrize(
    "garbage", [b"hello\r\n\r\n", b"CONNECT\r\n\r\n", b"GET / HTTP/1.1\r\n\r\n"]
)
async def test_what_is_not_a_proxy_request_gets_400(garbage: bytes) -> None:
    refused: list[str] = []
    async with server(Proxy(frozenset(), refused.append)) as proxy_port:
        stream = await anyio.connect_tcp("127.0.0.1", proxy_port)
        async with stream:
            await stream.send(garbage)
            head, _ = await head_of(stream)
    assert head.startswith(b"HTTP/1.1 400 "), head


def test_the_proxy_variables_leave_loopback_endpoints_direct() -> None:
    env = proxy_env(3128, ["gpu.localhost"])
    for name in ("HTTPS_PROXY", "https_proxy", "HTTP_PROXY", "http_proxy", "ALL_PROXY"):
        assert env[name] == "http://127.0.0.1:3128"
    assert env["NO_PROXY"].split(",") == ["localhost", "127.0.0.1", "::1", "gpu.localhost"]


async def test_pipe_passes_each_sides_end_on() -> None:
    """A half-close on one side reaches the other, and the pipe ends once both are done."""

    async def upper(stream: anyio.abc.SocketStream) -> None:
        async with stream:
            data = b""
            while True:
                try:
                    data += await stream.receive()
                except anyio.EndOfStream:
                    break
            await stream.send(data.upper())

    async def relay(inside: anyio.abc.SocketStream) -> None:
        async with inside, await anyio.connect_tcp("127.0.0.1", upper_port) as outside:
            await pipe(inside, outside)

    async with server(upper) as upper_port, server(relay) as relay_port:
        stream = await anyio.connect_tcp("127.0.0.1", relay_port)
        async with stream:
            await stream.send(b"model answer")
            await stream.send_eof()
            got = b""
            while True:
                try:
                    got += await stream.receive()
                except anyio.EndOfStream:
                    break
    assert got == b"MODEL ANSWER"
