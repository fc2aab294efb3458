"""A session's network namespace under the sandbox with an open network has its own way out
(``SessionNet.open(uplink)``, ``slirp4netns``), on real processes, as root and as a user who is
not: its default route goes through the helper's gateway (``10.0.2.2``) and a server on this
machine's own network address (not its loopback) answers from inside; a kill -9 of the
orchestrator leaves no helper behind."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from tests.sandbox.test_command_confinement import layout
from tests.support.spare_user import as_users, hand_over, spare_uid
from tests.support.timing import patience

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
GATEWAY = "0202000A"  # 10.0.2.2 as /proc/net/route writes it (little-endian hex)


def _outside_address() -> str:
    """This machine's address on its network (the slirp side reaches it; its loopback is
    out of reach by design): the first global IPv4 address."""
    out = subprocess.run(["ip", "-4", "-o", "addr", "show", "scope", "global"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    addresses = [line.split()[3].split("/")[0] for line in out.splitlines() if line.strip()]
    assert addresses, "this machine has no global IPv4 address to serve the test from"
    return addresses[0]


@contextmanager
def _server(host: str) -> Iterator[int]:
    """A server on ``host`` that says ``hello from outside`` to each connection."""
    listener = socket.create_server((host, 0))
    port = listener.getsockname()[1]
    stop = threading.Event()

    def serve() -> None:
        listener.settimeout(0.2)
        while not stop.is_set():
            try:
                conn, _ = listener.accept()
            except TimeoutError:
                continue
            with conn:
                conn.sendall(b"hello from outside")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield port
    finally:
        stop.set()
        thread.join(timeout=5)
        listener.close()


def _as(uid: int | None) -> list[str]:
    if uid is None:
        return []
    return ["setpriv", f"--reuid={uid}", f"--regid={uid}", "--clear-groups"]


def _env() -> dict[str, str]:
    return {"PATH": os.environ["PATH"], "PYTHONPATH": str(ROOT), "HOME": "/"}


@pytest.mark.parametrize("uid", as_users())
def test_the_session_s_namespace_reaches_outside_through_its_uplink(uid: int | None) -> None:
    if uid is not None:
        uid = spare_uid()
    host = _outside_address()
    with _server(host) as port:
        done = subprocess.run(
            [*_as(uid), sys.executable, "-m", "tests.services.uplinked", "reach", host, str(port)],
            capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=patience(60),
        )  # fmt: skip
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["uplinked"] is True
    assert result["code"] == 0, result["err"]
    assert result["gateway"] == GATEWAY
    assert result["said"] == "hello from outside"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


@pytest.mark.parametrize("uid", as_users())
def test_a_kill_9_of_the_orchestrator_leaves_no_uplink(uid: int | None) -> None:
    if uid is not None:
        uid = spare_uid()
    process = subprocess.Popen(
        [*_as(uid), sys.executable, "-m", "tests.services.uplinked", "hold"],
        stdout=subprocess.PIPE, text=True, cwd=ROOT, env=_env(),
    )  # fmt: skip
    try:
        assert process.stdout is not None
        pids = json.loads(process.stdout.readline())
        assert Path(f"/proc/{pids['helper']}/exe").resolve().name == "slirp4netns"
        assert _alive(pids["helper"]) and _alive(pids["holder"])
        os.kill(pids["me"], signal.SIGKILL)
        process.wait(timeout=patience(10))
        deadline = patience(20)
        for _ in range(int(deadline * 10)):
            if not _alive(pids["helper"]) and not _alive(pids["holder"]):
                break
            threading.Event().wait(0.1)
        assert not _alive(pids["helper"]), "slirp4netns outlived the orchestrator"
        assert not _alive(pids["holder"]), "the namespace's holder outlived the orchestrator"
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout is not None:
            process.stdout.close()


@pytest.mark.parametrize("uid", as_users())
def test_a_verify_command_under_the_sandbox_reaches_outside_from_the_session_s_network(
    uid: int | None,
) -> None:
    """The command runs confined in the session's namespace: it sees the uplink's DNS
    forwarder as its resolver, and a server on the machine's network address answers."""
    if uid is not None:
        uid = spare_uid()
    bwrap = shutil.which("bwrap")
    assert bwrap is not None
    root = Path(tempfile.mkdtemp(prefix="council-uplink-", dir="/var/tmp"))  # not /tmp: hidden
    try:
        layout(root)
        hand_over(root, uid)
        host = _outside_address()
        with _server(host) as port:
            argv = ["verify", str(root), bwrap, host, str(port)]
            done = subprocess.run(
                [*_as(uid), sys.executable, "-m", "tests.services.uplinked", *argv],
                capture_output=True, text=True, cwd=ROOT, env=_env(), timeout=patience(60),
            )  # fmt: skip
    finally:
        shutil.rmtree(root, ignore_errors=True)
    assert done.returncode == 0, done.stderr[-3000:]
    result = json.loads(done.stdout.splitlines()[-1])
    assert result["code"] == 0, result["output"]
    assert "nameserver 10.0.2.3" in result["output"]
    assert f"{GATEWAY} hello from outside" in result["output"]
