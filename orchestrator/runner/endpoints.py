"""Where a CLI's model is, and so what its own network must reach (``orchestrator.sandbox``).

``model_endpoints(adapter, request, env)`` reads what the adapter says of its model
(``Adapter.model_endpoints``: its vendor's API hosts, the endpoint its options name, ``base_url``
or Ollama's ``host``) and the endpoint variables of the CLI's environment (``*_BASE_URL``,
``*_API_BASE``, ``OLLAMA_HOST``: a URL, or ``host:port`` as ``OLLAMA_HOST`` takes it), each as
an ``Endpoint``:

- one on this machine's loopback (``local``: ``127.0.0.1``, ``::1``, ``localhost``) is relayed
  into the CLI's own network at the same address, that port alone
  (``orchestrator.sandbox.relay``), whatever the network setting but ``none``;
- the others are what ``network: model`` allows through its proxy
  (``orchestrator.sandbox.proxy``): ``(host, port)``, HTTPS's 443 when the value names no port.

``loopback_endpoints(adapter)`` is the first kind among the adapter's options alone.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from urllib.parse import urlsplit

from orchestrator.adapter import Adapter, AdapterRequest

__all__ = ["Endpoint", "loopback_endpoints", "model_endpoints", "parse_endpoint"]

_FIELDS = ("base_url", "host")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})
_ENV_SUFFIXES = ("_BASE_URL", "_API_BASE")
_ENV_NAMES = frozenset({"OLLAMA_HOST"})


@dataclass(frozen=True)
class Endpoint:
    """One place a CLI's model is: ``text`` as named, ``host`` (lower case, no brackets) and
    ``port``; ``local`` when it is on this machine's loopback."""

    text: str
    host: str
    port: int
    local: bool


def parse_endpoint(value: str) -> Endpoint | None:
    """``value`` (a URL, ``host:port`` or a host) as an ``Endpoint``; None when it names no
    host."""
    text = value.strip()
    if not text:
        return None
    url = urlsplit(text if "://" in text else f"//{text}")
    try:
        host, port = url.hostname, url.port
    except ValueError:
        return None
    if not host:
        return None
    if port is None:
        port = 80 if url.scheme.lower() == "http" else 443
    host = host.lower().rstrip(".")
    return Endpoint(text, host, port, _on_loopback(host))


def model_endpoints(
    adapter: Adapter, request: AdapterRequest, env: Mapping[str, str] | None = None
) -> list[Endpoint]:
    """Every endpoint of the CLI's model (see the module doc), each once."""
    values: list[str] = list(adapter.model_endpoints(request))
    named = sorted((env or {}).items())
    values += [value for name, value in named if _is_endpoint_variable(name)]
    return _unique(parse_endpoint(value) for value in values)


def loopback_endpoints(adapter: Adapter) -> list[str]:
    """The endpoints of ``adapter``'s options that are on this machine's loopback."""
    found: list[str] = []
    for name in _FIELDS:
        value = getattr(adapter.config, name, None)
        if isinstance(value, str) and value.strip():
            endpoint = parse_endpoint(value)
            if endpoint is not None and endpoint.local:
                found.append(value.strip())
    return found


def _is_endpoint_variable(name: str) -> bool:
    return name in _ENV_NAMES or name.endswith(_ENV_SUFFIXES)


def _unique(endpoints: Iterable[Endpoint | None]) -> list[Endpoint]:
    seen: dict[tuple[str, int], Endpoint] = {}
    for endpoint in endpoints:
        if endpoint is not None:
            seen.setdefault((endpoint.host, endpoint.port), endpoint)
    return list(seen.values())


def _on_loopback(host: str) -> bool:
    if host in _LOCAL_NAMES or host.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
