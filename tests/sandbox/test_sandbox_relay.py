"""A hostile CLI under the sandbox whose model is on the machine's loopback, and one under
``network: model``, try everything their network might reach (``fault_clis/net_reach.py``):

- with ``network: open`` it reaches its model's endpoint on the machine's loopback (relayed
  in, ``orchestrator.sandbox.relay``) and not another loopback port nor a Unix socket in the
  run's ``TMPDIR``;
- with ``network: model`` it reaches its model's API host (a service on this machine's own
  non-loopback address: no traffic leaves the machine) through the proxy alone, is refused
  another host with a 403 that its log names, reaches nothing straight, and still reaches its
  loopback endpoint through the relay.

As the user the tests run as, and as root also as a spare unprivileged user (``setpriv``),
which is what CI does. Both tasks land."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from orchestrator.sandbox import network
from orchestrator.sandbox.relay import LAUNCHER
from tests.support.fault_helpers import FaultRun
from tests.support.net_services import Service, public_address
from tests.support.spare_user import as_users, git_as_root, hand_over, user_dir

pytestmark = pytest.mark.sandbox


@contextmanager
def services(*made: Service) -> Iterator[None]:
    try:
        yield
    finally:
        for service in made:
            service.close()


@contextmanager
def run_tmpdir(uid: int | None) -> Iterator[Path]:
    """A ``TMPDIR`` that is not ``/tmp`` (nor under it), the run's user's."""
    with tempfile.TemporaryDirectory(prefix="council-tmpdir-", dir="/var/tmp") as where:
        path = Path(where)
        hand_over(path, uid)
        yield path


def run_and_read(run: FaultRun, base: Path, tmpdir: Path, uid: int | None) -> dict[str, Any]:
    hand_over(base, uid)
    finished = run.run(user=uid, env={"TMPDIR": str(tmpdir), "HOME": str(base)}, timeout=90)
    assert finished.returncode == 0, finished.stderr[-3000:]
    assert finished.task()["status"] == "done", finished.report
    seen: dict[str, Any] = json.loads(git_as_root(run.repo, "show", "main:net.json"))
    return seen


def headers(run: FaultRun) -> list[str]:
    logs = run.logs()
    assert logs
    return [log.read_text().split("\n")[0] for log in logs]


@pytest.mark.parametrize("uid", as_users())
def test_a_loopback_model_is_reached_and_nothing_else_of_the_machine(
    tmp_path: Path, uid: int | None
) -> None:
    assert network.problem() is None, network.problem()
    with user_dir(uid, tmp_path) as base, run_tmpdir(uid) as tmpdir:
        model = Service(socket.AF_INET, ("127.0.0.1", 0), b"model\n")
        other = Service(socket.AF_INET, ("127.0.0.1", 0), b"secret\n")
        socket_dir = tmpdir / "council-service"
        socket_dir.mkdir(mode=0o700)
        unix = Service(socket.AF_UNIX, str(socket_dir / "s"), b"secret\n")
        hand_over(tmpdir, uid)
        env = {
            "FAULT_MODEL_BASE_URL": f"http://127.0.0.1:{model.port}",
            "FAULT_LOOPBACK": f"127.0.0.1:{other.port}",
            "FAULT_UNIX": str(socket_dir / "s"),
        }
        with services(model, other, unix):
            run = FaultRun(base, "net_reach.py", env=env, sandbox="bubblewrap")
            seen = run_and_read(run, base, tmpdir, uid)
        assert seen["model endpoint"] == {"reached": True, "reply": "model\n"}, seen
        for name in ("other loopback port", "unix socket in TMPDIR"):
            assert not seen[name]["reached"], f"{name}: {seen[name]}"
        assert (model.reached, other.reached, unix.reached) == (1, 0, 0)
        for header in headers(run):
            assert "network: its own" in header, header
            assert f"relayed in, that port alone: 127.0.0.1:{model.port}" in header, header


@pytest.mark.parametrize("uid", as_users())
def test_network_model_reaches_the_api_host_alone(tmp_path: Path, uid: int | None) -> None:
    address = public_address()
    if address is None:
        if os.environ.get("CI") == "true":
            pytest.fail("CI's machine has a non-loopback address: this case must run there")
        pytest.skip("this machine has no non-loopback address to stand for an API host")
    with user_dir(uid, tmp_path) as base, run_tmpdir(uid) as tmpdir:
        api = Service(socket.AF_INET, (address, 0), b"api\n")
        elsewhere = Service(socket.AF_INET, (address, 0), b"secret\n")
        model = Service(socket.AF_INET, ("127.0.0.1", 0), b"model\n")
        other = Service(socket.AF_INET, ("127.0.0.1", 0), b"secret\n")
        env = {
            "FAULT_API_BASE_URL": f"https://{address}:{api.port}",  # the model's API host
            "FAULT_ALLOWED": f"{address}:{api.port}",
            "FAULT_REFUSED": f"{address}:{elsewhere.port}",
            "FAULT_MODEL_BASE_URL": f"http://127.0.0.1:{model.port}",
            "FAULT_LOOPBACK": f"127.0.0.1:{other.port}",
        }
        sandbox = {"mode": "bubblewrap", "network": "model"}
        with services(api, elsewhere, model, other):
            run = FaultRun(base, "net_reach.py", env=env, sandbox=sandbox)
            seen = run_and_read(run, base, tmpdir, uid)
        assert seen["proxy"].startswith("http://127.0.0.1:"), seen
        assert seen["allowed via proxy"] == {"reached": True, "reply": "api\n"}, seen
        assert seen["model endpoint"] == {"reached": True, "reply": "model\n"}, seen
        assert "403" in seen["refused via proxy"].get("error", ""), seen
        for name in ("allowed straight", "refused straight", "other loopback port"):
            assert not seen[name]["reached"], f"{name}: {seen[name]}"
        assert (api.reached, elsewhere.reached, model.reached, other.reached) == (1, 0, 1, 0)
        for header in headers(run):
            assert f"network: model (through a proxy to {address}:{api.port}" in header, header
        log = "".join(path.read_text() for path in run.logs())
        assert f"# network: model: refused CONNECT {address}:{elsewhere.port}" in log, log


def test_a_loopback_model_below_port_1024_is_refused_saying_why(tmp_path: Path) -> None:
    """The launcher has no capability to listen on a low port: the run fails, and says so,
    rather than giving the CLI the machine's network."""
    env = {"FAULT_MODEL_BASE_URL": "http://127.0.0.1:81"}
    run = FaultRun(tmp_path, "net_reach.py", env=env, sandbox="bubblewrap")
    finished = run.run(timeout=60)
    assert finished.task()["status"] == "failed", finished.report
    log = "".join(path.read_text() for path in run.logs())
    assert "council relay: cannot listen on 127.0.0.1:81" in log, log
    assert "serve the model on a port from 1024 up" in log, log


def test_an_optional_address_someone_listens_on_fails_the_launch(tmp_path: Path) -> None:
    """A ``?`` address is left out only where it does not exist (``::1`` with IPv6 off): one
    that something else listens on already (a session's service, in a session's network)
    fails the launch, or the CLI would send that listener its model's requests and key."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        ours, theirs = socket.socketpair()
        with ours, theirs:
            argv = [sys.executable, "-I", "-S", "-c", LAUNCHER, str(theirs.fileno()), "-1"]
            done = subprocess.run(
                [*argv, f"?127.0.0.1:{port}", "--", "/bin/true"],
                pass_fds=(theirs.fileno(),),
                capture_output=True,
                text=True,
                timeout=30,
            )
    assert done.returncode == 125, (done.returncode, done.stderr)
    assert f"cannot listen on 127.0.0.1:{port}" in done.stderr
