"""A session's own network namespace, held for the session's life (``SessionNet``).

Without it, every launch of a confined CLI and every verify command gets a namespace of its
own that ends with it (``orchestrator.sandbox.network``): a server one check starts is gone
before the next runs, and a server the CLI starts is out of its checks' reach. Unconfined,
they all share the machine's loopback: the same port in two sessions collides. A
``SessionNet`` is one namespace per session: its loopback (``127.0.0.1``, up, empty) is the
session's alone, for its services and every command that joins it; the same port in N
sessions never collides and no session reaches another's servers.

- the namespace is made and held by ``holder.py`` (a program of its own, importing nothing),
  as root a bare network namespace, for a user who is not root one inside a user namespace
  that maps only them; it lives while the orchestrator holds its standard input open: a
  kill -9 of the orchestrator ends it;
- ``join(argv)``: ``argv`` in that namespace (``nsenter --net``, and for a user who is not
  root ``--user`` with their own uid kept: ``--preserve-credentials``);
- ``open(uplink)``: with a network helper (``slirp4netns``, an open network setting under the
  sandbox), the namespace gets a way out to the public network once, when it is made, as a
  confined CLI's own namespace does (``sandbox.network.start_helper``: ``10.0.2.2`` the
  gateway, never the machine's loopback: ``--disable-host-loopback``; ``10.0.2.3`` its DNS).
  The helper ends when the pipe the orchestrator holds for it closes (``--exit-fd``): with
  ``close``, and with a kill -9 of the orchestrator;
- ``problem()``: why a session cannot get one here (probed once per process); the caller then
  says so once and falls back to the machine's network.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sys
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator.errors import RunError
from orchestrator.process.command import run_short
from orchestrator.process.launch import helper_ended, spawn_logged
from orchestrator.sandbox.network import start_helper

__all__ = ["HOLDER", "SessionNet", "join_argv", "problem", "python"]

HOLDER = Path(__file__).with_name("holder.py")
_READY_TIMEOUT = 20.0
_EXIT_WAIT = 5.0
_PROBE_TIMEOUT = 20.0
_probed: dict[str, str | None] = {}


def problem() -> str | None:
    """Why a session cannot get a network namespace of its own here (None: it can), probed
    once per process (blocking: it starts the holder once)."""
    if "" not in _probed:
        _probed[""] = _probe()
    return _probed[""]


def _probe() -> str | None:
    for program in ("nsenter", "unshare", "setpriv"):
        if shutil.which(program) is None:
            return f"{program} is not installed (Debian/Ubuntu: apt install util-linux)"
    try:  # its stdin is /dev/null: it says ready and ends
        done = run_short([python(), "-I", "-S", str(HOLDER)], cwd=Path("/"), timeout=_PROBE_TIMEOUT)
    except RunError as exc:
        return f"cannot make a network namespace here: {exc}"
    if not done.ok or not done.output.startswith("ready"):
        said = done.output.strip()[-300:] or f"exit {done.returncode}"
        return f"cannot make a network namespace here: {said}"
    return None


def python() -> str:
    """A Python to run ``holder.py`` with (it imports nothing, any Python 3 will do): this
    one, unless this user may not start it again (an interpreter under a directory closed to
    them), then the machine's ``python3``."""
    if os.access(sys.executable, os.X_OK):
        return sys.executable
    return shutil.which("python3", path=os.defpath) or sys.executable


def join_argv(pid: int, argv: Sequence[str]) -> list[str]:
    """``argv`` run in the network namespace held by ``pid`` (see the module doc)."""
    nsenter = shutil.which("nsenter") or "nsenter"
    head = [nsenter, f"--net=/proc/{pid}/ns/net"]
    if os.geteuid() != 0:
        head += [f"--user=/proc/{pid}/ns/user", "--preserve-credentials"]
    return [*head, "--", *argv]


class SessionNet:
    """One session's network namespace while its holder runs (``open``, then ``close``)."""

    def __init__(self, process: anyio.abc.Process) -> None:
        self._process: anyio.abc.Process | None = process
        self.pid = process.pid
        self._uplink: anyio.abc.Process | None = None  # its network helper, if it has one
        self._uplink_exit: int | None = None  # the pipe's end whose closing ends the helper

    @property
    def uplinked(self) -> bool:
        """Whether the namespace has a way out to the public network (``open``'s ``uplink``)."""
        return self._uplink is not None

    @classmethod
    async def open(cls, uplink: str | None = None) -> SessionNet:
        """A new namespace, ready (its loopback up; with ``uplink``, the network helper's
        program, its way out configured too). ``RunError`` when it cannot be made."""
        said_read, said_write = os.pipe()
        try:
            argv = [python(), "-I", "-S", str(HOLDER)]
            process = await spawn_logged(
                argv, Path("/"), {"PATH": os.defpath}, said_write, stdin=True
            )
        except OSError as exc:
            os.close(said_read)
            raise RunError(f"cannot start the session's network holder: {exc}") from None
        finally:
            os.close(said_write)
        net = cls(process)
        said = b""
        try:
            with anyio.move_on_after(_READY_TIMEOUT):
                said = await anyio.to_thread.run_sync(
                    _first_line, said_read, abandon_on_cancel=True
                )
        finally:
            os.close(said_read)
        if said.startswith(b"ready\n"):
            if uplink is not None:
                try:
                    await net._attach(uplink)
                except BaseException:
                    await net.close()
                    raise
            return net
        await net.close()
        text = said.decode(errors="replace").strip()[-300:]
        raise RunError(f"the session's network namespace was not made: {text or 'no answer'}")

    async def _attach(self, helper: str) -> None:
        exit_read, exit_write = os.pipe()  # the helper ends when exit_write closes
        self._uplink_exit = exit_write
        try:
            self._uplink = await start_helper(helper, self.pid, exit_read)
        finally:
            os.close(exit_read)

    def join(self, argv: Sequence[str]) -> list[str]:
        """``argv`` run in this namespace."""
        return join_argv(self.pid, argv)

    @property
    def alive(self) -> bool:
        return self._process is not None and self._process.returncode is None

    async def close(self) -> None:
        """End the namespace's network helper, then its holder (the namespace ends once
        nothing else is in it)."""
        await self._end_uplink()
        process, self._process = self._process, None
        if process is None:
            return
        with anyio.CancelScope(shield=True):
            if process.stdin is not None:
                with contextlib.suppress(Exception):
                    await process.stdin.aclose()
            with anyio.move_on_after(_EXIT_WAIT):
                await process.wait()
            if process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    process.kill()
                await process.wait()
            with contextlib.suppress(Exception):
                await process.aclose()
            helper_ended(process)

    async def _end_uplink(self) -> None:
        exit_write, self._uplink_exit = self._uplink_exit, None
        if exit_write is not None:
            with contextlib.suppress(OSError):
                os.close(exit_write)
        helper, self._uplink = self._uplink, None
        if helper is None:
            return
        with anyio.CancelScope(shield=True):
            with anyio.move_on_after(_EXIT_WAIT):
                await helper.wait()
            if helper.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    helper.kill()
                await helper.wait()
            with contextlib.suppress(Exception):
                await helper.aclose()
            helper_ended(helper)


def _first_line(fd: int) -> bytes:
    """What ``fd`` says up to its first line's end, or all of it once it closes (blocking)."""
    said = b""
    while b"\n" not in said:
        chunk = os.read(fd, 4096)
        if not chunk:
            break
        said += chunk
    return said
