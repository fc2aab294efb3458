"""Single ports of the machine, reached from a confined CLI's own network one by one.

A CLI whose network is its own (``orchestrator.sandbox.network``: no host loopback; or
``network: model``, no route out at all) still has to reach a few things this machine serves:
its model on the machine's loopback (Ollama's ``127.0.0.1:11434``, a local proxy, the test
suite's fake model servers), and under ``network: model`` the orchestrator's allow-list proxy
(``orchestrator.sandbox.proxy``). A ``Relay`` gives it exactly those, each at the address the
CLI already uses, and nothing else of the machine:

    bwrap ... -- <python> -I -S -c LAUNCHER <fd> <gate> 127.0.0.1:11434,?::1:11434 -- <cli> ...

- the launcher (the orchestrator's own interpreter, which the sandbox shows: ``plan``) runs
  inside the sandbox first, in the CLI's network namespace: it binds and listens on each
  address (on the namespace's own loopback, empty), hands the listening sockets to the
  orchestrator over an inherited Unix socket pair (``SCM_RIGHTS``), closes its copies, and
  execs the CLI. So the addresses listen before the CLI's first instruction, and the CLI
  holds no descriptor of the relay; a ``?`` address is optional (``::1`` where IPv6 is off),
  but one that something else listens on already fails the launch as any other would: in a
  session's network (``orchestrator.services``) a service could be listening there, and the
  CLI would send it its model's requests and their key.
  With a network helper to wait for (``Uplink.gate_inside``), it starts at once and waits for
  the helper itself (one byte on ``<gate>``) before it binds, so its own start overlaps the
  helper's instead of adding to it;
- the orchestrator accepts on those sockets (they stay in the CLI's namespace) in its event
  loop for the CLI's lifetime (``serving``), and carries each connection to its ``Route``: a
  ``Forward`` connects to the same port of the machine's loopback, a ``Proxy`` answers HTTP
  CONNECT for an allow-list. Nothing is bound outside the sandbox: no file, no path, no port;
- when the CLI ends, its namespace's processes end; ``close`` drops the sockets, and with them
  the namespace.

A port below 1024 cannot be relayed: the launcher runs with no capability (the sandbox drops
them all), so it cannot listen there; the CLI's run fails saying so.

The price is the launcher's start (an interpreter started with ``-I -S``: no site, no user
paths) on each launch that has a relay; a launch without one runs the CLI straight. Bytes
go through the event loop in 64 KiB reads (``bench/sandbox_bench.py`` measures both).
"""

from __future__ import annotations

import contextlib
import logging
import socket
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass

import anyio
import anyio.abc

from orchestrator.errors import RunError

__all__ = ["LAUNCHER", "Address", "Forward", "Relay", "Relays", "pipe", "relays"]

log = logging.getLogger(__name__)

# Runs inside the sandbox, before the CLI: argv is <fd> <gate> <addresses> -- <cli> <args...>
# (gate -1: nothing to wait for). Only built-in modules: it costs the interpreter's start.
LAUNCHER = r"""
import _socket, errno, posix, sys
fd, gate, wanted, argv = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(","), sys.argv[5:]
if gate >= 0:
    if not posix.read(gate, 1):
        sys.stderr.write("council relay: the sandbox's network was not made\n")
        posix._exit(125)
    posix.close(gate)
held = []
for item in wanted:
    optional = item.startswith("?")
    host, port = item.lstrip("?").rsplit(":", 1)
    family = _socket.AF_INET6 if ":" in host else _socket.AF_INET
    try:
        listener = _socket.socket(family, _socket.SOCK_STREAM)
        listener.setsockopt(_socket.SOL_SOCKET, _socket.SO_REUSEADDR, 1)
        listener.bind((host, int(port)))
        listener.listen(128)
    except OSError as exc:
        if optional and exc.errno != errno.EADDRINUSE:  # no such address here: left out
            continue
        low = " (below 1024: a confined CLI has no capability to listen there; serve the " \
            "model on a port from 1024 up)" if int(port) < 1024 else ""
        sys.stderr.write("council relay: cannot listen on %s:%s: %s%s\n" % (host, port, exc, low))
        posix._exit(125)
    held.append(listener)
channel = _socket.socket(_socket.AF_UNIX, _socket.SOCK_STREAM, 0, fd)
fds = b"".join(s.fileno().to_bytes(4, sys.byteorder) for s in held)
names = ",".join("%s:%d" % s.getsockname()[:2] for s in held)
channel.sendmsg([names.encode()], [(_socket.SOL_SOCKET, _socket.SCM_RIGHTS, fds)])
for s in held:
    s.close()
channel.close()
posix.execv(argv[0], argv)
"""

_CHUNK = 65536
_CONNECT_TIMEOUT = 10.0


@dataclass(frozen=True)
class Address:
    """Where a relay listens inside the sandbox: ``host`` a loopback literal, as the socket
    names it (``127.0.0.1``, ``::1``)."""

    host: str
    port: int
    optional: bool = False  # ``::1`` beside ``127.0.0.1`` for a name, where IPv6 may be off

    def spec(self) -> str:
        return f"{'?' if self.optional else ''}{self.host}:{self.port}"


Route = Callable[[anyio.abc.SocketStream], Awaitable[None]]


@dataclass(frozen=True)
class Forward:
    """A route to one port of the machine's loopback (a model endpoint there)."""

    host: str  # as the endpoint names it: 127.0.0.1, ::1, localhost
    port: int

    async def __call__(self, inside: anyio.abc.SocketStream) -> None:
        try:
            with anyio.fail_after(_CONNECT_TIMEOUT):
                outside = await anyio.connect_tcp(self.host, self.port)
        except (OSError, TimeoutError) as exc:
            log.info("relay to %s:%d: %s", self.host, self.port, exc)
            return
        async with outside:
            await pipe(inside, outside)


class Relay:
    """One launch's relays: made before the launch (``launcher`` goes in front of the CLI's
    command, ``child_fds`` kept open in the sandbox), ``started`` once it is spawned, served
    while the CLI runs (``Relays.serve``), then ``close`` (see the module doc)."""

    def __init__(self, routes: Sequence[tuple[Address, Route]]) -> None:
        if not routes:
            raise ValueError("a relay needs at least one address")
        self.routes = list(routes)
        self._ours, self._theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        self._ours.setblocking(False)  # ``_theirs`` reaches the sandbox by ``pass_fds`` alone
        self._listeners: list[anyio.abc.SocketListener] = []
        self._given = False
        self._gate = -1  # a descriptor to wait on first (``wait_for``)
        self._scope: anyio.CancelScope | None = None  # serving's, made in the event loop
        self._closed = False

    def child_fds(self) -> tuple[int, ...]:
        return (self._theirs.fileno(),) if not self._given else ()

    def wait_for(self, gate: int) -> None:
        """Have the launcher wait for a byte on ``gate`` (kept open in the sandbox by its
        owner) before it binds and starts the CLI."""
        self._gate = gate

    def launcher(self, executable: str, argv: Sequence[str]) -> list[str]:
        """The command that runs ``executable`` (with ``argv[1:]``) behind the relay's
        listeners, inside the sandbox."""
        specs = ",".join(address.spec() for address, _ in self.routes)
        head = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(self._theirs.fileno())]
        return [*head, str(self._gate), specs, "--", executable, *argv[1:]]

    def started(self) -> None:
        """The sandbox was spawned (or failed to be): its end of the socket pair goes."""
        if not self._given:
            self._given = True
            self._theirs.close()

    async def _receive(self) -> list[socket.socket]:
        """The listening sockets the launcher hands over ([] when it ended without)."""
        await anyio.wait_readable(self._ours)
        try:
            names, fds, _flags, _addr = socket.recv_fds(self._ours, 4096, len(self.routes))
        except OSError as exc:
            raise RunError(f"the sandbox's relay did not start: {exc}") from None
        sockets = [socket.socket(fileno=fd) for fd in fds]
        log.debug("relay listening inside the sandbox on %s", names.decode(errors="replace"))
        return sockets

    async def serve(self) -> None:
        """Accept on each listener and carry each connection to its route, until cancelled
        or closed."""
        if self._closed:
            return
        self._scope = anyio.CancelScope()
        with self._scope:
            await self._serve()

    async def _serve(self) -> None:
        received = await self._receive()
        if not received:
            return
        by_address = {(address.host, address.port): route for address, route in self.routes}
        async with anyio.create_task_group() as group:
            for sock in received:
                sock.setblocking(False)
                host, port = sock.getsockname()[:2]
                listener = await anyio.abc.SocketListener.from_socket(sock)
                self._listeners.append(listener)
                group.start_soon(_accept, listener, by_address[(host, port)])

    async def close(self) -> None:
        """Stop accepting (connections under way end with the run's ``relays``) and close
        every descriptor."""
        self.started()
        self._closed = True
        if self._scope is not None:
            self._scope.cancel()
        anyio.notify_closing(self._ours)
        for listener in self._listeners:
            with contextlib.suppress(Exception):
                await listener.aclose()
        self._listeners.clear()
        self._ours.close()


async def _accept(listener: anyio.abc.SocketListener, route: Route) -> None:
    async def handle(stream: anyio.abc.SocketStream) -> None:
        # A connection's failure is its own: never the relay's, nor the CLI's run.
        try:
            async with stream:
                await route(stream)
        except Exception:
            log.debug("relay connection failed", exc_info=True)

    with contextlib.suppress(anyio.ClosedResourceError):
        await listener.serve(handle)


async def pipe(one: anyio.abc.SocketStream, other: anyio.abc.SocketStream) -> None:
    """Carry bytes both ways until both sides have ended (each end's EOF passed on)."""

    async def copy(source: anyio.abc.SocketStream, sink: anyio.abc.SocketStream) -> None:
        try:
            while True:
                try:
                    data = await source.receive(_CHUNK)
                except anyio.EndOfStream:
                    break
                await sink.send(data)
            with contextlib.suppress(OSError, anyio.ClosedResourceError):
                await sink.send_eof()
        except (OSError, anyio.BrokenResourceError, anyio.ClosedResourceError):
            group.cancel_scope.cancel()  # one side is gone: so is the connection

    async with anyio.create_task_group() as group:
        group.start_soon(copy, one, other)
        group.start_soon(copy, other, one)


class Relays:
    """The relays of one CLI run, served in the run's task group (``relays``)."""

    def __init__(self, group: anyio.abc.TaskGroup) -> None:
        self._group = group

    def serve(self, relay: Relay) -> None:
        async def run() -> None:
            try:
                await relay.serve()
            except Exception as exc:  # the CLI then finds nothing at the address: its error
                log.warning("relay: %s", exc)

        self._group.start_soon(run)


@asynccontextmanager
async def relays() -> AsyncIterator[Relays]:
    """A place to serve a run's relays while the context lasts; they stop when it ends. What
    the body raises leaves the context as it came (never wrapped in the task group)."""
    raised: BaseException | None = None
    async with anyio.create_task_group() as group:
        try:
            yield Relays(group)
        except BaseException as exc:
            raised = exc
        finally:
            group.cancel_scope.cancel()
    if raised is not None:
        raise raised
