"""A session's services (``SessionServices``): its network namespace, the services its phases
need, their state for ``council status`` and the variables its CLI and checks get.

- ``open``: the session's network (``SessionNet``), or, where this machine cannot make one
  (``session_net.problem``), the machine's network, said once per process (``fallback``):
  then only the services' variables, TMPDIR and caches are the session's own, their ports
  are not. With ``uplink`` (an open network under the sandbox), that namespace gets its way
  out to the public network when it is made;
- ``before(phase)``: the services ``phase`` needs started (in the order configured) and
  waited for; those running that it does not need stopped. A service that fails raises
  ``ServiceFailed`` (its name, its log's tail): its phase fails for it, not for the CLI;
- ``variables()``: ``COUNCIL_SERVICE_<NAME>_*`` of every configured service;
- ``join(argv)``: ``argv`` in the session's network (unchanged without one);
- ``close``: every service stopped, then the namespace's holder (on a cancel too).

``states`` holds each service's state (``stopped``, ``starting``, ``ready``, ``failed``),
``reasons`` why one failed, ``touched`` the services started at least once; ``on_change`` (when
given) is awaited after each change of a state, so what the store shows follows it
(``scheduler.session_services``, ``services.records``).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import anyio.to_thread

from orchestrator.config.services import ServiceConfig
from orchestrator.safety.safe_write import write_atomic
from orchestrator.sandbox.commands import CommandPlace, SessionSide
from orchestrator.sandbox.network import DNS
from orchestrator.services import service as service_mod
from orchestrator.services.service import RunningService, ServiceFailed
from orchestrator.services.session_net import SessionNet, problem

__all__ = ["SessionServices", "fallback"]

log = logging.getLogger(__name__)
_said: set[str] = set()


def fallback() -> str | None:
    """Why sessions share the machine's network here (None: each gets its own), said in the
    log once per process (blocking: probes once)."""
    why = problem()
    if why is not None and why not in _said:
        _said.add(why)
        log.warning(
            "sessions share this machine's network (%s): their services' ports may collide; "
            "TMPDIR and caches stay each session's own",
            why,
        )
    return why


def _resolv(log_dir: Path) -> Path:
    """A ``resolv.conf`` naming the uplink's DNS forwarder, in the session's log directory
    (blocking; a link planted there is replaced, never followed)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / "resolv.conf"
    write_atomic(log_dir, path, f"nameserver {DNS}\n".encode())
    return path


class SessionServices:
    """One session's services (see the module doc)."""

    def __init__(
        self,
        configs: Mapping[str, ServiceConfig],
        *,
        workdir: Path,
        env: Mapping[str, str],
        log_dir: Path,
        place: CommandPlace | None = None,
        uplink: str | None = None,
        on_change: Callable[[], Awaitable[None]] | None = None,
    ) -> None:
        self.configs = dict(configs)
        self.workdir, self.env, self.log_dir = workdir, dict(env), log_dir
        self.place = place  # the session's sandbox, which its services run in
        self.uplink = uplink  # the network helper giving its namespace the public network
        self.net: SessionNet | None = None
        self.resolv: Path | None = None  # its DNS forwarder's resolv.conf, when uplinked
        self.running: dict[str, RunningService] = {}
        self.states: dict[str, str] = dict.fromkeys(self.configs, "stopped")
        self.reasons: dict[str, str] = {}  # why each failed service failed (its last failure)
        self.touched: list[str] = []  # the services started at least once, in that order
        self.on_change = on_change
        self.isolated = False

    async def open(self) -> None:
        """Make the session's network (see the module doc)."""
        if self.net is not None:
            return
        if await anyio.to_thread.run_sync(fallback) is None:
            self.net = await SessionNet.open(self.uplink)
            self.isolated = True
            if self.net.uplinked:
                self.resolv = await anyio.to_thread.run_sync(_resolv, self.log_dir)

    def variables(self) -> dict[str, str]:
        out: dict[str, str] = {}
        for name, config in self.configs.items():
            out.update(config.variables(name))
        return out

    def join(self, argv: Sequence[str]) -> list[str]:
        return self.net.join(argv) if self.net is not None else list(argv)

    def log_of(self, name: str) -> Path:
        return self.log_dir / f"service-{name}.log"

    async def before(self, phase: str) -> None:
        """Start what ``phase`` needs, stop what it does not (see the module doc)."""
        await self.open()
        for name in [n for n in self.running if not self.configs[n].needed_by(phase)]:
            await self._stop(name)
        for name, config in self.configs.items():
            if not config.needed_by(phase):
                continue
            running = self.running.get(name)
            if running is not None and running.running:
                continue
            await self._start(name, config)

    async def _set(self, name: str, state: str) -> None:
        if self.states.get(name) == state:
            return
        self.states[name] = state
        if self.on_change is not None:
            await self.on_change()

    def _place(self) -> CommandPlace | None:
        """Where a service runs: the session's sandbox, shown its namespace's DNS forwarder
        when the namespace has a way out (``resolv``)."""
        if self.place is None or self.resolv is None:
            return self.place
        return replace(self.place, session=SessionSide(resolv=self.resolv))

    async def _start(self, name: str, config: ServiceConfig) -> None:
        if name not in self.touched:
            self.touched.append(name)
        self.reasons.pop(name, None)
        await self._set(name, "starting")
        env = {**self.env, **self.variables()}
        try:
            running = await service_mod.start(
                name,
                config,
                net=self.net,
                cwd=self.workdir,
                env=env,
                log=self.log_of(name),
                place=self._place(),
            )
            self.running[name] = running
            await running.ready(self.net, cwd=self.workdir, env=env)
        except ServiceFailed as exc:
            self.running.pop(name, None)
            self.reasons[name] = exc.why
            await self._set(name, "failed")
            raise
        await self._set(name, "ready")

    async def _stop(self, name: str) -> None:
        running = self.running.pop(name, None)
        if running is not None:
            await running.stop()
        await self._set(name, "stopped")

    async def close(self) -> None:
        """Stop every service, then end the session's network."""
        with anyio.CancelScope(shield=True):
            for name in reversed(list(self.running)):
                await self._stop(name)
            if self.net is not None:
                net, self.net = self.net, None
                await net.close()
