"""A hostile CLI under the sandbox with the network open (the default) tries the machine's own
services: a TCP service on the machine's loopback, the same port through the network helper's
gateway, and a Unix socket in the run's ``TMPDIR`` when that is not ``/tmp``. None answers it,
while the way out (a service on the machine's own non-loopback address, where it has one)
stays open; both tasks land. As the user the tests run as, and as root also as a spare
unprivileged user (``setpriv``), which is what CI does."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from orchestrator.sandbox import network
from tests.support.fault_helpers import COUNCIL, FaultRun
from tests.support.net_services import Service, public_address
from tests.support.spare_user import as_users, hand_over, user_dir

pytestmark = pytest.mark.sandbox


@pytest.fixture
def tmpdir_not_tmp() -> Iterator[Path]:
    """A ``TMPDIR`` that is not ``/tmp`` (nor under it), readable by the spare user."""
    where = Path(tempfile.mkdtemp(prefix="council-tmpdir-", dir="/var/tmp"))
    where.chmod(0o755)
    try:
        yield where
    finally:
        shutil.rmtree(where, ignore_errors=True)


@pytest.mark.parametrize("uid", as_users())
def test_the_machines_services_are_out_of_reach(
    tmp_path: Path, tmpdir_not_tmp: Path, uid: int | None
) -> None:
    assert network.problem() is None, network.problem()
    loopback = Service(socket.AF_INET, ("127.0.0.1", 0))
    port = loopback.sock.getsockname()[1]
    # A socket as the orchestrator's MCP servers and `council db up` put theirs in TMPDIR.
    socket_dir = tmpdir_not_tmp / "council-service"
    socket_dir.mkdir(mode=0o700)
    unix = Service(socket.AF_UNIX, str(socket_dir / "s"))
    address = public_address()
    public = Service(socket.AF_INET, (address, 0)) if address else None
    env = {"FAULT_LOOPBACK": f"127.0.0.1:{port}", "FAULT_UNIX": str(socket_dir / "s")}
    if public is not None:
        env["FAULT_PUBLIC"] = f"{address}:{public.sock.getsockname()[1]}"
    with user_dir(uid, tmp_path) as tmp:
        run = FaultRun(tmp, "net_escape.py", env=env, sandbox="bubblewrap")
        try:
            hand_over(tmp, uid)
            hand_over(tmpdir_not_tmp, uid)
            prefix = [] if uid is None else [
                "setpriv", "--reuid", str(uid), "--regid", str(uid), "--clear-groups"
            ]  # fmt: skip
            finished = subprocess.run(
                [*prefix, *COUNCIL, "run", str(run.config_path), "--json"],
                cwd=tmp, capture_output=True, timeout=120,
                env={**os.environ, "COUNCIL_DISABLE_PLUGINS": "1", "TMPDIR": str(tmpdir_not_tmp),
                     "HOME": str(tmp)},
            )  # fmt: skip
        finally:
            for service in (loopback, unix, public):
                if service is not None:
                    service.close()
        check_run(run, finished, loopback, unix, public)


def check_run(
    run: FaultRun,
    finished: subprocess.CompletedProcess[bytes],
    loopback: Service,
    unix: Service,
    public: Service | None,
) -> None:
    assert finished.returncode == 0, finished.stderr[-3000:]
    # The network's helper is the orchestrator's own process, never the CLI's survivor.
    assert b"left processes" not in finished.stderr, finished.stderr[-3000:]
    report = json.loads(finished.stdout)
    statuses = {task["task_id"]: task["status"] for task in report["tasks"]}
    assert statuses["fault"] == "done", report
    seen = json.loads(
        subprocess.run(
            ["git", "-c", "safe.directory=*", "-C", str(run.repo), "show", "main:net.json"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    )
    for name in ("loopback tcp", "gateway to loopback", "unix socket in TMPDIR"):
        assert not seen[name]["reached"], f"{name}: {seen[name]}"
    assert loopback.reached == 0 and unix.reached == 0
    if public is not None:
        assert seen["public tcp"] == {"reached": True, "reply": "secret\n"}, seen
        assert public.reached == 1
    logs = list((run.council_dir / "logs").rglob("fault-*.log"))
    assert logs and all("network: its own" in log.read_text().split("\n")[0] for log in logs)


@pytest.mark.parametrize(
    ("options", "local"),
    [
        ({}, False),
        ({"base_url": "https://api.anthropic.com"}, False),
        ({"base_url": "http://127.0.0.1:8080"}, True),
        ({"base_url": "http://localhost:8080"}, True),
        ({"base_url": "http://[::1]:8080"}, True),
        ({"base_url": "http://192.0.2.7:8080"}, False),
    ],
)
def test_a_model_on_loopback_is_known_by_its_endpoint(options: dict[str, str], local: bool) -> None:
    """The adapter whose model is on this machine's loopback is known by its options (its port
    is relayed into the CLI's own network: tests/sandbox/test_sandbox_relay.py)."""
    from adapters.claude_code import ClaudeCodeAdapter
    from adapters.ollama import OllamaAdapter
    from orchestrator.runner.endpoints import loopback_endpoints

    found = loopback_endpoints(ClaudeCodeAdapter(options))
    assert found == ([options["base_url"]] if local else [])
    assert loopback_endpoints(OllamaAdapter({"host": "127.0.0.1:11434"})) == ["127.0.0.1:11434"]
    assert loopback_endpoints(OllamaAdapter({"host": "gpu-box:11434"})) == []
