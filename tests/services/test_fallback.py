"""Where a machine cannot give a session a network of its own, its services still run, on the
machine's network, and the run says so once (``orchestrator.services.session``)."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import anyio
import pytest

from orchestrator.config.services import ServiceConfig
from orchestrator.services import session, session_net
from orchestrator.services.session import SessionServices


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def test_without_a_namespace_services_run_on_the_machine_s_network(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setitem(session_net._probed, "", "no namespaces on this machine (test)")
    monkeypatch.setattr(session, "_said", set())  # said once per process: this test's own
    port = _free_port()
    server = ["python3", "-m", "http.server", str(port), "--bind", "127.0.0.1"]
    configs = {"web": ServiceConfig(command=server, port=port)}

    async def run() -> tuple[bool, str, bool]:
        groups = [
            SessionServices(
                configs, workdir=tmp_path, env={"PATH": "/usr/bin:/bin"}, log_dir=tmp_path / n
            )
            for n in ("a", "b")
        ]
        try:
            await groups[0].before("build")
            await groups[1].open()
            with socket.create_connection(("127.0.0.1", port), timeout=5):
                reached = True  # from this process: the machine's loopback
            return groups[0].isolated, groups[0].states["web"], reached
        finally:
            for group in groups:
                await group.close()

    with caplog.at_level(logging.WARNING, logger="orchestrator.services.session"):
        isolated, state, reached = anyio.run(run)
    assert (isolated, state, reached) == (False, "ready", True)
    said = [
        r.getMessage() for r in caplog.records if "share this machine's network" in r.getMessage()
    ]
    assert len(said) == 1 and "no namespaces on this machine (test)" in said[0]
