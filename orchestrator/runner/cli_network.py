"""The network one confined CLI gets: its setting (``sandbox.network``) and where its model is
(``orchestrator.runner.endpoints``), made into what its launch needs.

- ``open`` where the machine can (``orchestrator.sandbox.network``): a namespace of its own
  whose way out is the public network (an ``Uplink``); a model endpoint on this machine's
  loopback is relayed in at the same address, that port alone (``orchestrator.sandbox.relay``);
  every other port of the machine stays out of reach;
- ``model``: a namespace with no route at all (bubblewrap's ``--unshare-net``), whose only ways
  out are the relayed loopback endpoints and the allow-list proxy
  (``orchestrator.sandbox.proxy``) at ``127.0.0.1:3128`` inside, named by ``HTTPS_PROXY`` and
  its kin, which reaches the model's API hosts alone;
- ``none``: no network (nothing relayed either);
- ``open`` where the machine cannot give a namespace of its own: the machine's network, said;
- ``open`` in a session with services whose network has its own way out (``Sandbox.join``,
  ``orchestrator.services``): that namespace, joined, so the CLI reaches its session's
  services on its loopback as its checks do; its model's loopback endpoint relayed in there.

``CliNetwork.said`` is what the CLI's log header says of it.
"""

from __future__ import annotations

import dataclasses
import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from orchestrator.adapter import Adapter, AdapterRequest
from orchestrator.runner.endpoints import Endpoint, model_endpoints
from orchestrator.sandbox.network import Uplink
from orchestrator.sandbox.plan import Confinement, Sandbox, SandboxSettings
from orchestrator.sandbox.proxy import PORT, Proxy, proxy_env
from orchestrator.sandbox.relay import Address, Forward, Relay, Route

__all__ = ["CliNetwork", "cli_network"]


@dataclass
class CliNetwork:
    """One launch's network: the plan as the sandbox must run it, the helpers to start with
    it (each None when not needed) and what the log says."""

    plan: Confinement
    uplink: Uplink | None
    relay: Relay | None
    proxy: Proxy | None
    said: str
    joined: bool = False  # in its session's network namespace (``sandbox.plan.Sandbox.join``)

    def child_fds(self) -> tuple[int, ...]:
        fds = self.uplink.child_fds() if self.uplink is not None else ()
        return (*fds, *(self.relay.child_fds() if self.relay is not None else ()))

    def started(self) -> None:
        if self.uplink is not None:
            self.uplink.started()
        if self.relay is not None:
            self.relay.started()

    async def close(self) -> None:
        if self.relay is not None:
            await self.relay.close()
        if self.uplink is not None:
            await self.uplink.close()


def cli_network(
    settings: SandboxSettings,
    plan: Confinement,
    adapter: Adapter,
    request: AdapterRequest,
    env: Mapping[str, str],
    sandbox: Sandbox | None = None,
) -> CliNetwork:
    """The network of one confined launch of ``adapter``'s CLI (see the module doc)."""
    said = settings.reason
    if not plan.network:
        return CliNetwork(plan, None, None, None, said)
    endpoints = model_endpoints(adapter, request, env)
    local = [endpoint for endpoint in endpoints if endpoint.local]
    routes = _forwards(local)
    if settings.only_model:
        # A loopback endpoint too, for a CLI that sends it to the proxy despite NO_PROXY: the
        # same port alone, as its relay reaches.
        allowed = frozenset((endpoint.host, endpoint.port) for endpoint in endpoints)
        port = _free_port({address.port for address, _ in routes})
        proxy = Proxy(allowed)
        routes.append((Address("127.0.0.1", port), proxy))
        inside = proxy_env(port, [endpoint.host for endpoint in local])
        plan = dataclasses.replace(plan, network=False, env=(*plan.env, *inside.items()))
        public = sorted(f"{e.host}:{e.port}" for e in endpoints if not e.local)
        hosts = ", ".join(public) or "none"
        said = f"{said} (through a proxy to {hosts}{_relayed(local)})"
        return CliNetwork(plan, None, Relay(routes), proxy, said)
    if settings.uplink is None:  # the machine's network: its loopback is there already
        return CliNetwork(plan, None, None, None, said)
    if sandbox is not None and sandbox.join is not None and sandbox.resolv is not None:
        # Its session's network, up already with its own way out, its services on its
        # loopback; the model's loopback endpoint relayed in there as into a namespace of its
        # own.
        relay = Relay(routes) if routes else None
        said = f"{said}; in its session's network, with its services{_relayed(local)}"
        return CliNetwork(plan, None, relay, None, said, joined=True)
    uplink, relay = Uplink(settings.uplink), Relay(routes) if routes else None
    if relay is not None:  # the launcher waits for the network: its start overlaps the helper's
        relay.wait_for(uplink.gate_inside())
    return CliNetwork(plan, uplink, relay, None, f"{said}{_relayed(local)}")


def _relayed(local: Sequence[Endpoint]) -> str:
    if not local:
        return ""
    named = ", ".join(f"{endpoint.host}:{endpoint.port}" for endpoint in local)
    return f"; its model on this machine's loopback relayed in, that port alone: {named}"


def _forwards(local: Sequence[Endpoint]) -> list[tuple[Address, Route]]:
    """The relay's addresses for the loopback endpoints: each at the address the CLI uses
    (a name at ``127.0.0.1`` and, where IPv6 is on, ``::1``), carried to the same port of the
    machine's loopback."""
    routes: dict[tuple[str, int], tuple[Address, Route]] = {}
    for endpoint in local:
        try:
            address = ipaddress.ip_address(endpoint.host)
        except ValueError:  # localhost and its kin: either family
            forward = Forward(endpoint.host, endpoint.port)
            for inside in (
                Address("127.0.0.1", endpoint.port),
                Address("::1", endpoint.port, True),
            ):
                routes.setdefault((inside.host, inside.port), (inside, forward))
            continue
        if address.is_unspecified:  # 0.0.0.0 names this machine: its loopback
            address = ipaddress.ip_address("::1" if address.version == 6 else "127.0.0.1")
        host = str(address)
        routes.setdefault(
            (host, endpoint.port), (Address(host, endpoint.port), Forward(host, endpoint.port))
        )
    return list(routes.values())


def _free_port(taken: set[int]) -> int:
    port = PORT
    while port in taken:
        port += 1
    return port
