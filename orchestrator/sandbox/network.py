"""A confined CLI's own network: a namespace whose only way out is the public network.

With ``network: open`` (the default) a confined CLI does not share the machine's network
namespace, so nothing that listens on the machine's loopback (a ``council db up`` cluster,
a developer's database, another tool's API) and no socket in the machine's abstract namespace is
one hop away. Its traffic leaves through a user-mode network stack that runs outside, as the
user: it reaches what any other machine of the network could reach, never ``127.0.0.1`` of
this one. ``network: none`` gives no network at all (bubblewrap's ``--unshare-net``).

How one launch gets it (``Uplink``)::

    unshare --net [--user --map-current-user] -- bwrap ... --info-fd I --block-fd B
            --sync-fd S --ro-bind-data R /etc/resolv.conf ... -- <cli>
    slirp4netns --configure --disable-host-loopback --exit-fd <S's other end>
                --ready-fd F [--userns-path /proc/<pid>/ns/user] /proc/<pid>/ns/net tap0

- ``unshare`` makes the namespace before bubblewrap runs (for a user who is not root, inside a
  user namespace that maps only them, as bubblewrap's own does), so bubblewrap leaves the
  network alone: its own loopback set-up, with ``--unshare-net``, races the helper's;
- bubblewrap's info (``--info-fd``) says it runs, so the namespace exists; the orchestrator
  starts ``slirp4netns`` on it, waits for its ``--ready-fd``, then writes to ``--block-fd``:
  the CLI starts only with its network in place;
- ``--disable-host-loopback``: the helper's gateway (``10.0.2.2``) does not lead to the
  machine's loopback; the CLI's own ``127.0.0.1`` is its namespace's, empty;
- the helper's ``--exit-fd`` is the other end of a pipe bubblewrap holds while the sandbox
  lives (``--sync-fd``): it ends by itself when the sandbox ends, however that ends (a kill of
  the CLI's group included): no stray, whatever the orchestrator does;
- ``/etc/resolv.conf`` inside names the helper's DNS forwarder (``10.0.2.3``): the machine's
  resolver is often on its loopback (``127.0.0.53``), out of reach by design.

Why slirp4netns and not pasta (both are in Debian; both were tried here, as root and as a
user): slirp4netns attaches in about 3 ms, says when it is ready and ends with a descriptor,
as root and as a user alike. pasta took 30 to 90 ms per attach (it becomes a daemon once the
namespace is configured, which is also how it says it is ready), drops to ``nobody`` as root
and then cannot open the namespace by ``/proc/<pid>`` (it needs ``--runas 0`` and descriptors),
and forwards the machine's loopback ports into the namespace unless told not to (``-T none``).

What it needs (``problem``, probed once per process): ``unshare`` (util-linux), ``slirp4netns``,
and ``/dev/net/tun`` open to the user. Without them ``network: open`` keeps the machine's
network, and the run says why.

A CLI whose model is on the machine's loopback (Ollama, a local proxy, the test suite's fake
model servers) reaches that port alone, relayed in at the same address
(``orchestrator.sandbox.relay``); every other port of the machine's loopback stays out of reach.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Sequence
from pathlib import Path

import anyio
import anyio.abc

from orchestrator.errors import RunError
from orchestrator.process.command import run_short
from orchestrator.process.env import program
from orchestrator.process.launch import helper_ended, spawn_helper

__all__ = ["DNS", "HELPER", "Uplink", "find", "problem", "start_helper"]

HELPER = "slirp4netns"
DNS = "10.0.2.3"  # slirp4netns's DNS forwarder, on the namespace's side
_TUN = "/dev/net/tun"
_RESOLV = "/etc/resolv.conf"
_READY_TIMEOUT = 20.0  # seconds for the sandbox to start and the helper to configure it
_EXIT_WAIT = 5.0  # seconds the helper gets to end once the sandbox ended, before a kill
_PROBE_TIMEOUT = 20.0
_probed: dict[str, str | None] = {}


def find() -> str | None:
    """The network helper's program on this process's PATH (once per process and PATH)."""
    return program(HELPER)


def _head() -> list[str]:
    """The ``unshare`` command line in front of bubblewrap's."""
    unshare = program("unshare") or "unshare"
    if os.geteuid() == 0:
        return [unshare, "--net", "--"]
    return [unshare, "--user", "--map-current-user", "--net", "--"]


def problem() -> str | None:
    """Why a CLI cannot get a network of its own here (None: it can), probed once per process
    (blocking: it starts ``unshare``)."""
    if "" not in _probed:
        _probed[""] = _probe()
    return _probed[""]


def probed() -> tuple[bool, str | None]:
    """``problem()``'s answer when this process has probed already, without blocking: (True,
    the answer); (False, None) before the first probe."""
    if "" in _probed:
        return True, _probed[""]
    return False, None


def _probe() -> str | None:
    if shutil.which(HELPER) is None:
        return f"{HELPER} is not installed (Debian/Ubuntu: apt install {HELPER})"
    if shutil.which("unshare") is None:
        return "unshare is not installed (Debian/Ubuntu: apt install util-linux)"
    if not os.access(_TUN, os.R_OK | os.W_OK):
        return f"{_TUN} is not open to this user (chmod 0666 {_TUN}, as distributions ship it)"
    result = run_short([*_head(), "true"], cwd=Path("/"), timeout=_PROBE_TIMEOUT)
    if not result.ok:
        return f"unshare cannot make a network namespace here: {result.output.strip()[-300:]}"
    return None


class Uplink:
    """One confined launch's network: the pipes between bubblewrap, the helper and the
    orchestrator, and the helper once started. Made before the launch (``wrap`` its command,
    ``child_fds`` kept open in it), then ``started`` once it is spawned, ``attach`` to give it
    its network and let it run, and ``close`` once it ended (see the module doc)."""

    def __init__(self, helper: str) -> None:
        self.helper = helper
        # Who waits for the network before the CLI starts: bubblewrap (``--block-fd``), or the
        # relay's launcher run first inside, which then starts alongside the helper
        # (``gate_inside``).
        self._gate_inside = False
        self._info_read, self._info_write = os.pipe()
        self._block_read, self._block_write = os.pipe()
        self._exit_read, self._sync_write = os.pipe()  # bwrap holds one end, the helper the other
        self._resolv: int | None = None
        if os.path.exists(_RESOLV):
            self._resolv, writer = os.pipe()
            with contextlib.suppress(OSError):
                os.write(writer, f"nameserver {DNS}\n".encode())
            os.close(writer)
        self._process: anyio.abc.Process | None = None
        # Each descriptor is closed once: a number closed twice may be another's by then.
        self._open = {self._info_read, self._info_write, self._block_read, self._block_write}
        self._open |= {self._exit_read, self._sync_write}
        if self._resolv is not None:
            self._open.add(self._resolv)

    def child_fds(self) -> tuple[int, ...]:
        """The descriptors bubblewrap keeps (under their numbers, as ``wrap`` names them)."""
        kept = (self._info_write, self._block_read, self._sync_write)
        return (*kept, self._resolv) if self._resolv is not None else kept

    def gate_inside(self) -> int:
        """The descriptor the program bubblewrap runs reads one byte from before the CLI may
        start (the relay's launcher: ``orchestrator.sandbox.relay``), instead of bubblewrap
        blocking: that program's own start then overlaps the helper's."""
        self._gate_inside = True
        return self._block_read

    def wrap(self, bwrap: Sequence[str]) -> list[str]:
        """bubblewrap's command line (``bwrap`` first, without ``--unshare-net``) started in a
        network namespace of its own, blocked until ``attach`` (or its program is:
        ``gate_inside``)."""
        out = [*_head(), bwrap[0], "--info-fd", str(self._info_write)]
        if not self._gate_inside:
            out += ["--block-fd", str(self._block_read)]
        out += ["--sync-fd", str(self._sync_write)]
        if self._resolv is not None:
            out += ["--ro-bind-data", str(self._resolv), _RESOLV]
        return [*out, *bwrap[1:]]

    def started(self) -> None:
        """The sandbox was spawned (or failed to be): its ends of the pipes go here."""
        for fd in self.child_fds():
            self._drop(fd)

    async def attach(self, pid: int) -> None:
        """Give the sandbox started as ``pid`` its network, then let the CLI start. Raises
        ``RunError`` when it cannot (the caller stops the sandbox)."""
        try:
            with anyio.fail_after(_READY_TIMEOUT):
                info = await _read_json(self._info_read)
                if info is None:
                    raise RunError("the sandbox ended before its network was made")
                await self._start_helper(pid)
        except TimeoutError:
            raise RunError(
                f"the sandbox's network was not ready within {_READY_TIMEOUT:g}s"
            ) from None
        os.write(self._block_write, b"1")
        self._drop(self._block_write)

    async def _start_helper(self, pid: int) -> None:
        try:
            self._process = await start_helper(self.helper, pid, self._exit_read)
        finally:
            self._drop(self._exit_read)

    def _drop(self, fd: int) -> None:
        if fd in self._open:
            self._open.discard(fd)
            _close(fd)

    async def close(self) -> None:
        """The sandbox ended: the helper ends with it (waited for, killed after a few
        seconds should it not), every descriptor left is closed."""
        for fd in list(self._open):
            self._drop(fd)
        if self._process is not None:
            process, self._process = self._process, None
            with anyio.CancelScope(shield=True):
                await _wait_or_kill(process)
                with contextlib.suppress(Exception):
                    await process.aclose()
                helper_ended(process)


async def start_helper(helper: str, pid: int, exit_fd: int) -> anyio.abc.Process:
    """``helper`` started on the network namespace of ``pid`` (made by ``unshare`` or a
    session's holder: for a user who is not root, in the user namespace of that process),
    configured (``10.0.2.100/24``, default route via ``10.0.2.2``, DNS ``10.0.2.3``) and ready;
    it ends once ``exit_fd``'s other end is closed. ``RunError`` when it cannot."""
    ready_read, ready_write = os.pipe()
    argv = [helper, "--configure", "--disable-host-loopback", "--mtu", "65520"]
    argv += ["--exit-fd", str(exit_fd), "--ready-fd", str(ready_write)]
    if os.geteuid() != 0:  # the namespace belongs to the user namespace its maker made
        argv.append(f"--userns-path=/proc/{pid}/ns/user")
    argv += ["--netns-type=path", f"/proc/{pid}/ns/net", "tap0"]
    try:
        process = await spawn_helper(argv, {"PATH": os.defpath}, (exit_fd, ready_write))
    except OSError as exc:
        _close(ready_read)
        raise RunError(f"cannot start {helper}: {exc}") from None
    finally:
        _close(ready_write)
    try:
        ready = await _read_one(ready_read)
    finally:
        _close(ready_read)
    if not ready:
        code = await _wait_or_kill(process)
        helper_ended(process)
        raise RunError(f"{helper} could not configure the network namespace (exit {code})")
    return process


async def _wait_or_kill(process: anyio.abc.Process) -> int:
    with anyio.move_on_after(_EXIT_WAIT):
        return await process.wait()
    with contextlib.suppress(ProcessLookupError):
        process.kill()
    return await process.wait()


async def _read_json(fd: int) -> object | None:
    """The first JSON document written on the pipe ``fd`` (None: closed before one came).
    Waited for on the event loop (``anyio.wait_readable``), each read made once the pipe has
    bytes or its end: no worker thread sits blocked on it, and a cancellation ends the wait."""
    data = b""
    while True:
        await anyio.wait_readable(fd)
        chunk = os.read(fd, 4096)
        if not chunk:
            return None
        data += chunk
        with contextlib.suppress(ValueError):
            document: object = json.loads(data)
            return document


async def _read_one(fd: int) -> bool:
    """Whether one byte came on the pipe ``fd`` before its end (as ``_read_json`` waits)."""
    await anyio.wait_readable(fd)
    return bool(os.read(fd, 1))


def _close(fd: int) -> None:
    with contextlib.suppress(OSError):
        os.close(fd)
