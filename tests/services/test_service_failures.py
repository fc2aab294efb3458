"""A service that fails is named with its log's tail; a kill -9 of the orchestrator leaves no
service behind (``orchestrator.services``, on real processes)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import anyio
import psutil
import pytest
from pydantic import ValidationError

from orchestrator.config.services import ServiceConfig
from orchestrator.scheduler.session_services import _state
from orchestrator.services.records import MAX_WHY
from orchestrator.services.service import ServiceFailed
from orchestrator.services.session import SessionServices
from tests.support.timing import patience

pytestmark = pytest.mark.sandbox

ROOT = Path(__file__).resolve().parents[2]
ENV = {"PATH": "/usr/bin:/bin"}


def _group(tmp_path: Path, **configs: ServiceConfig) -> SessionServices:
    return SessionServices(configs, workdir=tmp_path, env=ENV, log_dir=tmp_path / "logs")


def _failure(group: SessionServices, phase: str) -> ServiceFailed:
    """What ``group`` raises as ``phase`` starts (it must), the group closed after."""

    async def run() -> ServiceFailed:
        try:
            with pytest.raises(ServiceFailed) as failed:
                await group.before(phase)
            return failed.value
        finally:
            await group.close()

    return anyio.run(run)


def test_a_service_that_ends_is_named_with_its_log_tail(tmp_path: Path) -> None:
    broken = ServiceConfig(
        command=["sh", "-c", "echo 'db: cannot open data directory' >&2; exit 3"], port=5432
    )
    group = _group(tmp_path, db=broken)

    error = _failure(group, "build")
    assert error.name == "db"
    assert "ended before it was ready (exit 3)" in error.why
    assert "db: cannot open data directory" in error.tail
    assert "service 'db'" in str(error) and "cannot open data directory" in str(error)
    assert group.states == {"db": "failed"}


def test_a_service_not_ready_in_time_is_stopped_and_named(tmp_path: Path) -> None:
    seconds = f"300.{os.getpid()}{time.monotonic_ns() % 10**6}"  # names this test's sleep alone
    slow = ServiceConfig(
        command=["sh", "-c", f"echo waiting; exec sleep {seconds}"],
        ready=["false"],
        start_timeout=1.5,
    )
    group = _group(tmp_path, slow=slow)

    error = _failure(group, "verify")
    assert error.why == "was not ready within 1.5s"
    assert error.tail.splitlines()[0] == "waiting"  # then the shell's word on its SIGTERM
    left = [p.pid for p in psutil.process_iter(["cmdline"]) if seconds in (p.info["cmdline"] or [])]
    assert left == []


def test_only_the_phases_that_need_a_service_get_it(tmp_path: Path) -> None:
    web = ServiceConfig(command=["sleep", "300"], ready=["true"], phases=["verify"])
    group = _group(tmp_path, web=web)

    async def run() -> list[str]:
        seen = []
        try:
            await group.before("build")
            seen.append(group.states["web"])
            await group.before("verify")
            seen.append(group.states["web"])
            await group.before("review")
            seen.append(group.states["web"])
        finally:
            await group.close()
        return seen

    assert anyio.run(run) == ["stopped", "ready", "stopped"]


def test_a_kill_9_of_the_orchestrator_leaves_no_service(tmp_path: Path) -> None:
    pids = tmp_path / "pids"
    # The orchestrator's stand-in: starts a session's service (which starts a worker of its
    # own), says so, then waits to be killed.
    script = f"""
import anyio, sys
from pathlib import Path
from orchestrator.config.services import ServiceConfig
from orchestrator.services.session import SessionServices
async def main():
    command = ["sh", "-c", "sleep 300 & echo started >> {pids}; exec sleep 301"]
    db = ServiceConfig(command=command, ready=["test", "-s", "{pids}"])
    group = SessionServices({{"db": db}},
        workdir=Path("{tmp_path}"), env={{"PATH": "/usr/bin:/bin"}}, log_dir=Path("{tmp_path}"))
    await group.before("build")
    print(group.net.pid if group.net else 0, group.running["db"].pid, flush=True)
    await anyio.sleep(300)
anyio.run(main)
"""
    stand_in = subprocess.Popen(
        [sys.executable, "-c", script],
        stdout=subprocess.PIPE,
        text=True,
        cwd=ROOT,
        env={**ENV, "PYTHONPATH": str(ROOT)},
        start_new_session=True,
    )
    try:
        assert stand_in.stdout is not None
        holder, service = (int(word) for word in stand_in.stdout.readline().split())
        tree = psutil.Process(service).children(recursive=True)
        started = [service, *(process.pid for process in tree)]
        names = sorted(process.name() for process in tree)
        assert names.count("sleep") == 2, names  # the service and its worker
    finally:
        os.kill(stand_in.pid, signal.SIGKILL)
        stand_in.wait()
        if stand_in.stdout is not None:
            stand_in.stdout.close()
    gone = [*started, holder] if holder else started
    deadline = time.monotonic() + patience(20)
    while any(_alive(pid) for pid in gone) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert [pid for pid in gone if _alive(pid)] == []


def _alive(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] != "Z"
    except FileNotFoundError:
        return False


def test_a_service_needs_a_way_to_know_it_is_ready() -> None:
    with pytest.raises(ValidationError, match="needs `port` or `ready`"):
        ServiceConfig.model_validate({"command": "postgres"})
    with pytest.raises(ValidationError, match="url may name only"):
        ServiceConfig.model_validate({"command": "redis-server", "port": 6379, "url": "{x}"})


def test_a_service_s_variables() -> None:
    db = ServiceConfig(command=["postgres"], port=5432, url="postgresql://{host}:{port}/app")
    assert db.variables("main-db") == {
        "COUNCIL_SERVICE_MAIN_DB_HOST": "127.0.0.1",
        "COUNCIL_SERVICE_MAIN_DB_PORT": "5432",
        "COUNCIL_SERVICE_MAIN_DB_URL": "postgresql://127.0.0.1:5432/app",
    }


def test_a_failing_service_s_log_tail_is_masked(tmp_path: Path) -> None:
    """Code the CLI wrote printed the log: a credential in it never reaches the task's error,
    its events or an issue told of the failure."""
    key = "AKIA" + "Q7EXAMPLEKEYZZ42"
    leaky = ServiceConfig(command=["sh", "-c", f"echo 'using {key}' >&2; exit 3"], port=5432)
    group = _group(tmp_path, db=leaky)

    error = _failure(group, "build")
    assert "using " in error.tail and key not in error.tail and key not in str(error)
    assert key in (tmp_path / "logs" / "service-db.log").read_text()  # the log itself is whole


def test_a_service_log_planted_as_a_link_is_not_followed(tmp_path: Path) -> None:
    """The log is opened without following a link: a link planted where it goes is refused,
    never written through."""
    target = tmp_path / "elsewhere"
    target.write_text("kept\n")
    (tmp_path / "logs").mkdir()
    (tmp_path / "logs" / "service-db.log").symlink_to(target)
    group = _group(tmp_path, db=ServiceConfig(command=["sh", "-c", "echo hi; sleep 30"], port=1))

    error = _failure(group, "build")
    assert "service-db.log" in error.why and "cannot be opened" in error.why
    assert target.read_text() == "kept\n"


def test_a_failure_s_reason_is_recorded_masked_and_bounded(tmp_path: Path) -> None:
    """What the store keeps of a failed service for ``status`` and the page
    (``scheduler.session_services``): its reason, credentials masked, cut to ``MAX_WHY``."""
    token = "ghp_0123456789abcdefghijABCDEFGHIJ012345"
    config = ServiceConfig.model_validate({"command": ["/bin/true"], "port": 5999})
    services = SessionServices({"db": config}, workdir=tmp_path, env={}, log_dir=tmp_path)
    services.states["db"] = "failed"
    services.reasons["db"] = f"could not be started: {token} " + "x" * (MAX_WHY * 2)
    recorded = _state(services, "db")
    assert recorded.state == "failed" and recorded.port == 5999
    assert recorded.why is not None and token not in recorded.why and "***" in recorded.why
    assert len(recorded.why) == MAX_WHY
    services.states["db"] = "starting"  # a reason belongs to a failure only
    assert _state(services, "db").why is None
