"""Whether a CLI can get a network of its own is probed once per process (it starts
``unshare``), in a worker thread; every later launch reads the answer without one (issue 51: no
hop for work that does not block)."""

from __future__ import annotations

from typing import Any

import anyio.to_thread
import pytest

from orchestrator.config.sandbox import SandboxConfig
from orchestrator.sandbox import choice, network


async def test_the_network_probe_hops_once_then_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    probes: list[str] = []

    def probe() -> str | None:
        probes.append("probed")
        return "no namespaces here (test)"

    hops: list[object] = []
    real = anyio.to_thread.run_sync

    async def counted(fn: Any, *args: Any, **kwargs: Any) -> Any:
        hops.append(fn)
        return await real(fn, *args, **kwargs)

    monkeypatch.setattr(network, "_probed", {})
    monkeypatch.setattr(network, "_probe", probe)
    monkeypatch.setattr(anyio.to_thread, "run_sync", counted)
    assert network.probed() == (False, None)
    config = SandboxConfig(network="open")
    first = await choice._uplink(config, "bubblewrap")
    second = await choice._uplink(config, "bubblewrap")
    assert (
        first == second == (None, "bubblewrap; network: the machine's (no namespaces here (test))")
    )
    assert (probes, len(hops)) == (["probed"], 1)
    assert network.probed() == (True, "no namespaces here (test)")
