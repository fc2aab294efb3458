"""The orchestrator's side of one session's council server: a Unix socket the session's CLI
reaches through ``council mcp --session``, answered by the session's ``Desk``.

Why a socket, and not the store opened by the process the CLI starts: that process runs in the
CLI's sandbox, which hides ``.council/`` (the file store, other sessions' worktrees and
homes) and must not be handed the team database's credentials either. The socket lives in a
private directory (``mkdtemp``: mode 0700, short enough for a socket's path) that the
sandbox shows this session's CLI alone (``PhaseCall.sandbox_read``); every other session's
directory stays under the sandbox's hidden ``/tmp``. The desk behind a socket answers for its
session only, whatever a request says: a request naming another session is refused. So a CLI
reaches the store through its own session's questions, and writes nothing but its notes and
its own locks.
"""

from __future__ import annotations

import logging
import shutil
import socket as sockets
import tempfile
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import anyio
import anyio.abc
import anyio.to_thread
from anyio.streams.buffered import BufferedByteReceiveStream

from orchestrator.coordination.wire import LINE_LIMIT, WireError, decode_request, encode
from orchestrator.safety.scratch import stale_dirs

if TYPE_CHECKING:
    # The desk answers a socket's requests: imported when one is served, not by the sweep of
    # stale sockets every run makes (``sweep_stale``), nor by a run whose CLIs take no MCP
    # server (``tools_later``).
    from orchestrator.coordination.desk import Answer, Desk

__all__ = ["SOCKET_NAME", "SessionSocket", "listening", "serve_session", "served", "sweep_stale"]

log = logging.getLogger(__name__)

SOCKET_NAME = "council.sock"
_PATH_LIMIT = 100  # a Unix socket's path holds 107 bytes on Linux
_BACKLOG = 128  # connections waiting for the server (one CLI's few at a time)


_PREFIX = "council-mcp-"
STALE_AFTER = 60.0  # seconds a directory whose socket nobody serves is left alone


def _root() -> str:
    root = tempfile.gettempdir()
    if len(root) + 32 > _PATH_LIMIT:
        root = "/tmp"  # noqa: S108 - the private directory below is mode 0700
    return root


def _private_dir() -> Path:
    return Path(tempfile.mkdtemp(prefix=_PREFIX, dir=_root()))


def _listening() -> tuple[Path, sockets.socket]:
    """A fresh private directory and a socket listening in it, made in one worker-thread call
    (its ``bind`` would take a call of its own through ``anyio.create_unix_listener``)."""
    directory = _private_dir()
    raw = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    try:
        raw.setblocking(False)
        raw.bind(str(directory / SOCKET_NAME))
        raw.listen(_BACKLOG)
    except BaseException:
        raw.close()
        shutil.rmtree(directory, ignore_errors=True)
        raise
    return directory, raw


def sweep_stale(root: str | None = None, *, older_than: float = STALE_AFTER) -> int:
    """Remove the socket directories of this user that no orchestrator serves any more (one
    killed before it could remove its own), once older than ``older_than`` seconds (a new one
    may not be bound yet); how many went. Blocking: a worker thread's. A directory whose
    socket answers is another live run's, and stays."""
    gone = 0
    for directory in stale_dirs(root or _root(), _PREFIX, older_than):
        if _served(directory / SOCKET_NAME):
            continue
        shutil.rmtree(directory, ignore_errors=True)
        gone += 1
    return gone


def _served(path: Path) -> bool:
    """Whether something listens on the socket at ``path`` (False: none there, or refused)."""
    if not path.exists():
        return False
    probe = sockets.socket(sockets.AF_UNIX, sockets.SOCK_STREAM)
    try:
        probe.settimeout(1.0)
        probe.connect(str(path))
    except (ConnectionRefusedError, FileNotFoundError):
        return False
    except OSError:
        return True  # cannot tell (busy, timed out): left alone
    finally:
        probe.close()
    return True


@dataclass(frozen=True)
class SessionSocket:
    """A session's private directory with its socket listening in it (``listening``)."""

    directory: Path
    raw: sockets.socket

    @property
    def path(self) -> Path:
        return self.directory / SOCKET_NAME

    def remove(self) -> None:
        """Close the socket (when no server took it) and remove its directory. Blocking: a
        worker thread's, once the session's CLI is gone."""
        self.raw.close()
        shutil.rmtree(self.directory, ignore_errors=True)


def listening() -> SessionSocket:
    """A fresh private directory and a socket listening in it. Blocking: the caller runs it in
    a worker-thread call, with other blocking work before the session's CLI starts."""
    directory, raw = _listening()
    return SessionSocket(directory, raw)


@asynccontextmanager
async def serve_session(desk: Desk) -> AsyncIterator[Path]:
    """Serve ``desk`` (made for one session) on a fresh socket while the context lasts; yields
    the socket's path. The directory goes with the context."""
    _session_of(desk)
    opened = await anyio.to_thread.run_sync(listening)
    try:
        async with served(desk, opened) as socket:
            yield socket
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(opened.remove)


@asynccontextmanager
async def served(desk: Desk, opened: SessionSocket) -> AsyncIterator[Path]:
    """Serve ``desk`` (made for one session) on ``opened`` while the context lasts; yields the
    socket's path. The directory stays: ``opened.remove()`` is the caller's, blocking, after
    the context (folded with its other blocking work after the session's CLI)."""
    session = _session_of(desk)
    raw = opened.raw
    # What the body raises (the CLI's call failing, a cancellation) leaves the context as it
    # came, never wrapped in the server's task group: the phase around it tells an adapter's
    # error from a crash by its type.
    raised: BaseException | None = None
    try:
        listener = await anyio.abc.SocketListener.from_socket(raw)
    except BaseException:
        raw.close()
        raise
    async with listener, anyio.create_task_group() as group:

        async def handle(stream: anyio.abc.SocketStream) -> None:
            # A connection's failure is its own: never the server's, nor the CLI's phase.
            try:
                async with stream:
                    await _answer(stream, desk, session)
            except Exception:
                log.warning("council server of %s: a call failed", session, exc_info=True)

        group.start_soon(listener.serve, handle)
        try:
            yield opened.path
        except BaseException as exc:  # re-raised below, outside the group, as it came
            raised = exc
        finally:
            group.cancel_scope.cancel()
    if raised is not None:
        raise raised


def _session_of(desk: Desk) -> str:
    if desk.caller is None:
        raise ValueError("a session's socket serves a session's desk")
    return desk.caller.session


async def _answer(stream: anyio.abc.SocketStream, desk: Desk, session: str) -> None:
    from orchestrator.coordination.desk import Answer

    lines = BufferedByteReceiveStream(stream)
    while True:
        try:
            line = await lines.receive_until(b"\n", LINE_LIMIT)
        except (anyio.EndOfStream, anyio.IncompleteRead, anyio.BrokenResourceError):
            return
        except anyio.DelimiterNotFound:
            too_long = f"error: a request is one line of JSON under {LINE_LIMIT} bytes"
            await _send(stream, Answer("error", too_long))
            return
        try:
            request = decode_request(line)
        except WireError as exc:
            await _send(stream, Answer("error", f"error: {exc}"))
            continue
        if request.session is not None and request.session != session:
            answer = Answer(
                "refused",
                f"refused: this council server answers session {session} only, "
                f"not {request.session}",
            )
            await desk.record(request.tool, answer, request.session)
        else:
            answer = await desk.call(request.tool, request.args)
        if not await _send(stream, answer):
            return


async def _send(stream: anyio.abc.SocketStream, answer: Answer) -> bool:
    try:
        await stream.send(encode({"outcome": answer.outcome, "text": answer.text}))
    except (anyio.BrokenResourceError, anyio.ClosedResourceError, WireError):
        log.debug("council server: an answer could not be sent", exc_info=True)
        return False
    return True
