"""The model endpoints an adapter's options name on this machine's loopback (``base_url``,
Ollama's ``host``): a confined CLI whose network is its own (``orchestrator.sandbox.network``)
cannot reach the machine's loopback, so such an adapter keeps the machine's network, and the
CLI's log says why.

``loopback_endpoints(adapter)`` reads the options every built-in adapter names its endpoint
with (``base_url``, ``host``: a URL, or ``host:port`` as ``OLLAMA_HOST`` takes it).
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

from orchestrator.adapter import Adapter

__all__ = ["loopback_endpoints"]

_FIELDS = ("base_url", "host")
_LOCAL_NAMES = frozenset({"localhost", "localhost.localdomain", "ip6-localhost"})


def loopback_endpoints(adapter: Adapter) -> list[str]:
    """The endpoints of ``adapter``'s options that are on this machine's loopback."""
    found: list[str] = []
    for name in _FIELDS:
        value = getattr(adapter.config, name, None)
        if isinstance(value, str) and value.strip() and _on_loopback(value.strip()):
            found.append(value.strip())
    return found


def _on_loopback(value: str) -> bool:
    url = urlsplit(value if "://" in value else f"http://{value}")
    try:
        host = url.hostname
    except ValueError:
        return False
    if not host:
        return False
    if host.lower() in _LOCAL_NAMES or host.lower().endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return False
    return address.is_loopback or address.is_unspecified
