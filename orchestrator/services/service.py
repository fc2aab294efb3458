"""One running service of a session (``start``): its program in the session's network, its
output in its own log, ready or failed, and stopped with nothing left behind.

How it is started::

    setpriv --pdeathsig KILL [nsenter --net=... [--user=... --preserve-credentials] --]
        unshare [--user --map-current-user] --pid --fork --kill-child=SIGKILL --
        /bin/sh -c <pass SIGTERM on, exit as the command does> service <command>

- in the session's network (``SessionNet.join``), or the machine's where it has none;
- in a PID namespace of its own whose first process is the service's: when that one ends,
  the kernel ends every process in it (a database's workers, a dev server's watchers);
- ``unshare`` itself ends when the orchestrator does, however it does (``--pdeathsig``: a
  kill -9 included), and takes the namespace with it (``--kill-child``): no orphan server, no
  leaked cluster, whatever happens to the orchestrator;
- ``stop``: SIGTERM to its process group (a database shuts down cleanly), SIGKILL after a
  grace period.

A service that ends before it is ready, or is not ready in time, raises ``ServiceFailed``
with its name and its log's tail (a failure of its own, never the CLI's).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
from collections.abc import Mapping, Sequence
from pathlib import Path

import anyio
import anyio.abc
import anyio.to_thread

from orchestrator.config.services import ServiceConfig
from orchestrator.errors import RunError
from orchestrator.process.command import marked, run_command
from orchestrator.process.launch import helper_ended, spawn_logged
from orchestrator.sandbox.commands import CommandPlace, service_argv, shown
from orchestrator.services.session_net import SessionNet, python

__all__ = ["RunningService", "ServiceFailed", "log_tail", "start"]

_STOP_GRACE = 10.0
_POLL = 0.1
_PROBE_TIMEOUT = 5.0
_TAIL_BYTES = 2000
_PORT_PROBE = (
    "import socket,sys\n"
    "s=socket.create_connection(('127.0.0.1',int(sys.argv[1])),timeout=2)\n"
    "s.close()\n"
)
# The first process of the service's PID namespace: a PID namespace's first process ignores
# every signal it has no handler for (SIGTERM too), so the service runs as its child and a
# SIGTERM is passed on to it; its exit status is this one's.
_INIT = (
    '"$@" & child=$!\n'
    "trap 'kill -TERM \"$child\" 2>/dev/null' TERM INT HUP\n"
    'while :; do wait "$child"; status=$?; kill -0 "$child" 2>/dev/null || exit "$status"; done\n'
)
_BASH_PROBE = ": <>/dev/tcp/127.0.0.1/$0"  # bash's own connect: no interpreter to start


class ServiceFailed(RunError):
    """A service that did not become ready: its name, why, and its log's tail."""

    def __init__(self, name: str, why: str, tail: str) -> None:
        self.name, self.why, self.tail = name, why, tail
        shown = f"\n--- its log's tail ---\n{tail}" if tail else " (its log is empty)"
        super().__init__(f"service {name!r} {why}{shown}")


def log_tail(log: Path, size: int = _TAIL_BYTES) -> str:
    """The last ``size`` bytes of ``log`` as text, masked ('' when there is none): code the
    CLI wrote printed it, and it goes into the task's error, its events and any issue told
    of the failure (blocking)."""
    try:
        with log.open("rb") as handle:
            handle.seek(max(0, log.stat().st_size - size))
            return shown(handle.read().decode(errors="replace").strip())
    except OSError:
        return ""


def wrapped(argv: Sequence[str], net: SessionNet | None) -> list[str]:
    """``argv`` as a service is started (see the module doc)."""
    setpriv = shutil.which("setpriv") or "setpriv"
    unshare = shutil.which("unshare") or "unshare"
    pid_ns = [unshare, "--pid", "--fork", "--kill-child=SIGKILL", "--"]
    if os.geteuid() != 0:
        pid_ns[1:1] = ["--user", "--map-current-user"]
    inner = [*pid_ns, "/bin/sh", "-c", _INIT, "service", *argv]
    return [setpriv, "--pdeathsig", "KILL", *(net.join(inner) if net else inner)]


class RunningService:
    """A started service: ``ready`` to wait for it, ``stop`` to end it."""

    def __init__(
        self,
        name: str,
        config: ServiceConfig,
        process: anyio.abc.Process,
        log: Path,
        place: CommandPlace | None = None,
    ) -> None:
        self.name, self.config, self.log, self.place = name, config, log, place
        self._process = process
        self.pid = process.pid
        self._probe: list[str] | None = None  # the readiness check's command line, made once

    def _confined(self, argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
        return service_argv(self.place, argv, env) if self.place is not None else list(argv)

    @property
    def running(self) -> bool:
        return self._process.returncode is None

    async def ready(self, net: SessionNet | None, *, cwd: Path, env: Mapping[str, str]) -> None:
        """Wait until the service is ready; ``ServiceFailed`` (after stopping it) when it ends
        first or takes longer than its ``start_timeout``."""
        with anyio.move_on_after(self.config.start_timeout):
            while True:
                if not self.running:
                    code = self._process.returncode
                    await self._failed(f"ended before it was ready (exit {code})")
                if await self._answers(net, cwd=cwd, env=env):
                    return
                await anyio.sleep(_POLL)
        await self._failed(f"was not ready within {self.config.start_timeout:g}s")

    async def _failed(self, why: str) -> None:
        await self.stop()
        raise ServiceFailed(self.name, why, await anyio.to_thread.run_sync(log_tail, self.log))

    async def _answers(self, net: SessionNet | None, *, cwd: Path, env: Mapping[str, str]) -> bool:
        if self.config.ready is not None:
            if self._probe is None:  # the repository's own check, maybe: run as confined
                self._probe = await anyio.to_thread.run_sync(self._confined, self.config.ready, env)
            argv = self._probe
        elif net is None:  # the machine's loopback: asked from here
            assert self.config.port is not None
            return await anyio.to_thread.run_sync(_connects, self.config.port)
        else:
            if self._probe is None:
                self._probe = _port_probe(self.config.port or 0)
            argv = self._probe
        started_argv = net.join(argv) if net is not None else argv
        try:
            result = await run_command(started_argv, cwd=cwd, env=env, timeout=_PROBE_TIMEOUT)
        except RunError:
            return False
        return result.ok

    async def stop(self) -> None:
        """SIGTERM to its process group, SIGKILL after a grace period; waited for."""
        process = self._process
        with anyio.CancelScope(shield=True):
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGTERM)
                with anyio.move_on_after(_STOP_GRACE):
                    await process.wait()
            if process.returncode is None:
                _signal_group(process.pid, signal.SIGKILL)
                await process.wait()
            with contextlib.suppress(Exception):
                await process.aclose()
            helper_ended(process)


async def start(
    name: str,
    config: ServiceConfig,
    *,
    net: SessionNet | None,
    cwd: Path,
    env: Mapping[str, str],
    log: Path,
    place: CommandPlace | None = None,
) -> RunningService:
    """Start ``name`` (not waited for: ``RunningService.ready``); its output appended to
    ``log``. With ``place``, in the session's sandbox (``sandbox.commands.service_argv``: it
    runs code the CLI wrote). ``ServiceFailed`` when its program cannot be started."""
    env = marked({**env, **config.env})
    try:
        argv, out = await anyio.to_thread.run_sync(_prepared, config.command, place, env, log)
    except OSError as exc:  # its log cannot be opened (a link planted there is never followed)
        raise ServiceFailed(name, f"its log {log} cannot be opened: {exc.strerror}", "") from None
    try:
        process = await spawn_logged(wrapped(argv, net), cwd, env, out)
    except OSError as exc:
        tail = await anyio.to_thread.run_sync(log_tail, log)
        raise ServiceFailed(name, f"could not be started: {exc}", tail) from None
    finally:
        os.close(out)
    return RunningService(name, config, process, log, place)


def _prepared(
    command: Sequence[str], place: CommandPlace | None, env: Mapping[str, str], log: Path
) -> tuple[list[str], int]:
    """The service's command line and its log, open for appending (blocking)."""
    argv = service_argv(place, command, env) if place is not None else list(command)
    log.parent.mkdir(parents=True, exist_ok=True)
    return argv, os.open(
        log, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC | os.O_NOFOLLOW, 0o600
    )


def _port_probe(port: int) -> list[str]:
    """A command that connects to ``port`` of its network's loopback: bash's ``/dev/tcp``
    where there is a bash (a system program, reachable in any namespace), else Python."""
    bash = shutil.which("bash")
    if bash is not None:
        return [bash, "-c", _BASH_PROBE, str(port)]
    return [python(), "-I", "-S", "-c", _PORT_PROBE, str(port)]


def _signal_group(pid: int, number: signal.Signals) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, number)


def _connects(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=2):
            return True
    except OSError:
        return False
