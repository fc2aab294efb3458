"""A CLI's family of processes (``process.tree``), process identity (``process.procid``) and
who uses a path (``process.path_users``), all read through psutil, against real processes:
a double-forked daemon re-parented away from the CLI, a child that left the CLI's group and
dropped its mark, processes holding files open under a worktree, a zombie, an orchestrator
that adopts orphans (a child subreaper, in a process of its own so the test runner is not
one) and a pid really reused by another process (in a pid namespace of its own)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import anyio
import psutil
import pytest

from orchestrator.errors import WorkspaceError
from orchestrator.process import procid, tree
from orchestrator.process.path_users import (
    cwd_of,
    lock_holders,
    move_stale_lock,
    processes_inside,
)
from orchestrator.process.procid import ProcessId
from orchestrator.process.stop import sweep
from orchestrator.process.tree import MARK_NAME, Family, find_strays, reap, signal_strays
from tests.support.cli_process_helpers import wait_for, wait_gone
from tests.support.timing import patience

Started = list[subprocess.Popen[str]]
SLEEP = shutil.which("sleep") or "/bin/sleep"
# A CLI whose child starts a session of its own and forks the daemon, then exits at once: the
# daemon is orphaned and re-parented (to init, or to the nearest subreaper). The CLI lives on.
DOUBLE_FORK = """
import os, sys, time
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        with open(sys.argv[1] + ".new", "w") as f:
            f.write(str(os.getpid()))
        os.rename(sys.argv[1] + ".new", sys.argv[1])
        time.sleep(60)
    os._exit(0)
os.wait()
time.sleep(60)
"""
# A process that opens the file it is given (creating it), says so, and sleeps.
HOLD = """
import sys, time
held = open(sys.argv[1], "a")
print("ready", flush=True)
time.sleep(60)
"""
CLEAN_ENV = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}  # no mark, no marker


@pytest.fixture
def started() -> Iterator[Started]:
    """Processes a test starts (each in a session of its own); killed with their group after."""
    processes: Started = []
    yield processes
    for process in processes:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        if process.stdout is not None:
            process.stdout.close()


def start(started: Started, argv: list[str], *, cwd: Path | str, env: dict[str, str]) -> int:
    process = subprocess.Popen(
        argv,
        cwd=cwd,
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    started.append(process)
    return process.pid


def hold(started: Started, path: Path, *, cwd: Path | str = "/") -> int:
    """A process with ``path`` open, once it has opened it."""
    pid = start(started, [sys.executable, "-c", HOLD, str(path)], cwd=cwd, env=CLEAN_ENV)
    stdout = started[-1].stdout
    assert stdout is not None and stdout.readline() == "ready\n"
    return pid


def kill_pid(pid: int) -> None:
    """End a daemon a test made (it is nobody's child here), if a failed test left it."""
    if psutil.pid_exists(pid):
        os.kill(pid, signal.SIGKILL)


def daemon_of(pidfile: Path) -> int:
    wait_for(pidfile.exists, "the daemon to write its pid", seconds=30)
    return int(pidfile.read_text())


def test_a_double_forked_daemon_is_found_by_the_mark_after_the_cli_exits(
    tmp_path: Path, started: Started
) -> None:
    mark, since = Family.new_mark()
    pidfile = tmp_path / "daemon.pid"
    env = {**CLEAN_ENV, MARK_NAME: mark}
    cli = start(started, [sys.executable, "-c", DOUBLE_FORK, str(pidfile)], cwd="/", env=env)
    daemon = daemon_of(pidfile)
    try:
        family = Family(cli, mark, since)
        assert psutil.Process(daemon).ppid() != cli  # re-parented: ancestry cannot see it
        assert [s.pid for s in find_strays(family, leader_alive=True)] == [daemon]
        os.killpg(cli, signal.SIGKILL)  # the CLI's group dies; the daemon is in another
        started[0].wait()
        strays = find_strays(family, leader_alive=False)
        assert [s.pid for s in strays] == [daemon]
        signal_strays(strays, signal.SIGKILL)
        reap(strays, wait=5.0)
        assert wait_gone([daemon]) == []
    finally:
        kill_pid(daemon)


def test_ancestry_finds_a_child_that_left_the_group_and_dropped_the_mark(
    tmp_path: Path, started: Started
) -> None:
    # The child has no mark, works in / and holds nothing open in the CLI's worktree: while
    # the CLI lives, being its child is all that tells it is the CLI's.
    leaves_child = (
        "import subprocess, sys, time\n"
        f"child = subprocess.Popen([{SLEEP!r}, '60'], start_new_session=True, env={{}}, cwd='/')\n"
        "print(child.pid, flush=True)\n"
        "time.sleep(60)\n"
    )
    mark, since = Family.new_mark()
    worktree = tmp_path / "worktree"
    worktree.mkdir()
    env = {**CLEAN_ENV, MARK_NAME: mark}
    cli = start(started, [sys.executable, "-c", leaves_child], cwd=worktree, env=env)
    stdout = started[0].stdout
    assert stdout is not None
    child = int(stdout.readline())
    try:
        family = Family(cli, mark, since, (str(worktree),))
        assert [s.pid for s in find_strays(family, leader_alive=True)] == [child]
        assert find_strays(family, leader_alive=False) == []
    finally:
        kill_pid(child)


def test_a_process_working_in_the_worktree_is_found_without_the_mark(
    tmp_path: Path, started: Started
) -> None:
    worktree, home, elsewhere = (tmp_path / name for name in ("worktree", "home", "elsewhere"))
    for directory in (worktree, home, elsewhere):
        directory.mkdir()
    before = hold(started, worktree / "early.txt")  # started before the CLI: not its
    mark, since = Family.new_mark()
    cli = start(started, [SLEEP, "60"], cwd=worktree, env={**CLEAN_ENV, MARK_NAME: mark})
    holds_file = hold(started, worktree / "held.txt")
    works_in_home = start(started, [SLEEP, "60"], cwd=home, env=CLEAN_ENV)
    outsider = hold(started, elsewhere / "held.txt", cwd=elsewhere)
    family = Family(cli, mark, since, (str(worktree), str(home)))

    found = {s.pid for s in find_strays(family, leader_alive=False)}

    assert found == {holds_file, works_in_home}
    assert before not in found and outsider not in found


def test_path_users_name_the_process_holding_a_lock_and_the_one_running_inside(
    tmp_path: Path, started: Started
) -> None:
    checkout = tmp_path / "checkout"
    (checkout / ".git").mkdir(parents=True)
    lock = checkout / ".git" / "index.lock"
    holder = hold(started, lock)
    inside = start(started, [SLEEP, "60"], cwd=checkout / ".git", env=CLEAN_ENV)

    holders = lock_holders(lock, [checkout])
    assert [(h.pid, h.how) for h in holders] == [(holder, "has index.lock open")]
    with pytest.raises(WorkspaceError, match=rf"{lock} is in use: pid {holder} \("):
        move_stale_lock(lock, [checkout], min_age=0.0)
    assert lock.exists()
    assert {h.pid for h in processes_inside(checkout)} == {inside}
    assert cwd_of(inside) == checkout / ".git"

    started[0].kill()
    started[0].wait()
    assert lock_holders(lock, [checkout]) == []
    state, moved = move_stale_lock(lock, [checkout], min_age=0.0)
    assert state == "moved" and moved is not None and moved.exists() and not lock.exists()


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux's /proc")
def test_who_runs_inside_is_read_without_identifying_every_process(
    tmp_path: Path, started: Started, monkeypatch: pytest.MonkeyPatch
) -> None:
    checkout = tmp_path / "checkout"
    checkout.mkdir()
    inside = start(started, [SLEEP, "60"], cwd=checkout, env=CLEAN_ENV)
    start(started, [SLEEP, "60"], cwd=tmp_path, env=CLEAN_ENV)  # one more, outside
    identified: list[int] = []
    real_init = psutil.Process.__init__

    def counted(self: psutil.Process, pid: int | None = None) -> None:
        identified.append(os.getpid() if pid is None else pid)
        real_init(self, pid)

    monkeypatch.setattr(psutil.Process, "__init__", counted)
    monkeypatch.setattr(psutil, "_pmap", {})  # no process psutil's table already knows

    holders = processes_inside(checkout)

    assert [(h.pid, h.how) for h in holders] == [(inside, f"runs in {checkout}")]
    assert SLEEP in holders[0].command
    assert identified == [inside]  # only the one found: not every process of the machine


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Linux start ticks")
def test_the_identity_is_the_boot_id_and_the_kernels_start_tick(started: Started) -> None:
    # Records written before psutil was used hold this form; they must still match.
    pid = start(started, [SLEEP, "60"], cwd="/", env=CLEAN_ENV)
    boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    stat = Path(f"/proc/{pid}/stat").read_bytes()
    tick = stat[stat.rfind(b")") + 2 :].split()[19].decode()

    assert procid.start_time(pid) == f"{boot}:{tick}"
    host = procid.current().host
    assert procid.is_alive(ProcessId(pid, host, f"{boot}:{tick}")) is True
    assert procid.is_alive(ProcessId(pid, host, f"{boot}:{int(tick) + 1}")) is False
    assert procid.is_alive(ProcessId(pid, host, "another-boot:" + tick)) is False
    assert procid.living()[pid] == procid.Living(pid, f"{boot}:{tick}")


def test_a_zombie_is_gone_and_reap_collects_a_child_of_ours(started: Started) -> None:
    # A direct child (no Popen bookkeeping), killed and not waited for: a zombie.
    pid = os.posix_spawn(SLEEP, [SLEEP, "60"], CLEAN_ENV)
    stray = psutil.Process(pid)
    recorded = ProcessId(pid, procid.current().host, procid.start_time(pid) or "")
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: stray.status() == psutil.STATUS_ZOMBIE, "the child to be a zombie", 30)

    assert procid.start_time(pid) is None
    assert procid.is_alive(recorded) is False
    assert pid not in procid.living()
    reap([stray], wait=5.0)
    assert not psutil.pid_exists(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already collected


def test_a_zombie_of_ours_the_cli_left_is_collected_and_never_said_to_survive(
    started: Started, tmp_path: Path
) -> None:
    """A CLI's child that had exited by the time the CLI ended (adopted, not collected yet)
    left nothing running: the sweep collects it and does not name it a survivor."""
    since = tree.since_now()
    pid = os.posix_spawn(SLEEP, [SLEEP, "60"], CLEAN_ENV, setsid=True)  # a group of its own
    stray = psutil.Process(pid)
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: stray.status() == psutil.STATUS_ZOMBIE, "the child to be a zombie", 30)
    family = Family(
        os.getpid() + 1_000_000,
        since=since,
        roots=(str(tmp_path),),
        own=set,
        alone_since=lambda: since,
    )
    assert stray in find_strays(family, leader_alive=False)  # found, as an adopted one

    assert anyio.run(sweep, family) == []
    assert not psutil.pid_exists(pid)
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # already collected


def test_the_marker_of_who_started_a_process_is_read_from_its_environment(
    started: Started,
) -> None:
    me = procid.current()
    marked = start(
        started, [SLEEP, "60"], cwd="/", env={**CLEAN_ENV, procid.MARKER_ENV: me.marker()}
    )
    unmarked = start(started, [SLEEP, "60"], cwd="/", env=CLEAN_ENV)

    assert procid.marker_of(marked) == me.marker()
    assert ProcessId.parse_marker(procid.marker_of(marked) or "") == me
    assert procid.marker_of(unmarked) is None


# What the subreaper scripts below start with: their imports and a wait with a limit.
SCRIPT_PRELUDE = """
import json, os, subprocess, sys, time
import psutil
from orchestrator.process import tree

def wait_for(condition):
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)
"""
ADOPTION = (
    SCRIPT_PRELUDE
    + """
assert tree.become_subreaper()
since = tree.since_now()
pidfile = sys.argv[2]
cli = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], pidfile], start_new_session=True, env={}, cwd="/"
)
wait_for(lambda: os.path.exists(pidfile))
daemon = int(open(pidfile).read())
wait_for(lambda: psutil.Process(daemon).ppid() == os.getpid())
family = tree.Family(cli.pid, None, since, (), lambda: {cli.pid}, lambda: since)
found = [p.pid for p in tree.find_strays(family, leader_alive=True)]
unsure = tree.adopted_strays(since, lambda: None)
adopted = tree.adopted_strays(since, lambda: {cli.pid})
tree.signal_strays(adopted, 9)
tree.reap(adopted, wait=5.0)
cli.kill()
cli.wait()
print(json.dumps({
    "daemon": daemon, "found": found, "unsure": [p.pid for p in unsure],
    "adopted": [p.pid for p in adopted], "left": psutil.pid_exists(daemon),
}))
"""
)


def run_subreaper(script: str, tmp_path: Path) -> dict[str, Any]:
    """What ``script`` (a subreaper starting ``DOUBLE_FORK`` as its CLI) printed as JSON."""
    done = subprocess.run(
        [sys.executable, "-c", script, DOUBLE_FORK, str(tmp_path / "daemon.pid")],
        capture_output=True,
        text=True,
        timeout=patience(60),
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper is Linux's")
def test_an_orchestrator_that_adopts_orphans_finds_reaps_and_kills_them(tmp_path: Path) -> None:
    # No mark, no worktree, not a descendant of the CLI any more: adopted by the orchestrator
    # (a child subreaper) while this CLI ran alone, so it is this CLI's.
    result = run_subreaper(ADOPTION, tmp_path)
    daemon = result["daemon"]
    try:
        assert result["found"] == [daemon]
        assert result["unsure"] == []  # a start under way: nobody is taken for adopted
        assert result["adopted"] == [daemon]
        assert result["left"] is False  # killed, and collected by its adoptive parent
    finally:
        kill_pid(daemon)


OWN_TREE = (
    SCRIPT_PRELUDE
    + """
from orchestrator.process import ps

assert tree.become_subreaper()
def machine_wide():
    raise AssertionError("every process of the machine was read")
ps.identified = machine_wide  # a subreaper looks in its own tree only
mark, since = tree.Family.new_mark()
pidfile = sys.argv[2]
cli = subprocess.Popen(
    [sys.executable, "-c", sys.argv[1], pidfile], start_new_session=True,
    env={tree.MARK_NAME: mark}, cwd="/",
)
wait_for(lambda: os.path.exists(pidfile))
daemon = int(open(pidfile).read())
family = tree.Family(cli.pid, mark, since, (), lambda: {cli.pid}, lambda: None)
alive = [p.pid for p in tree.find_strays(family, leader_alive=True)]
cli.kill()
cli.wait()
wait_for(lambda: psutil.Process(daemon).ppid() == os.getpid())
after = [p.pid for p in tree.find_strays(family, leader_alive=False)]
other = tree.Family(cli.pid, "another-cli", since, (), lambda: {cli.pid}, lambda: None)
theirs = [p.pid for p in tree.find_strays(other, leader_alive=False)]
tree.signal_strays([psutil.Process(daemon)], 9)
tree.reap([psutil.Process(daemon)], wait=5.0)
print(json.dumps({"daemon": daemon, "alive": alive, "after": after, "theirs": theirs}))
"""
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="a subreaper is Linux's")
def test_a_subreaper_finds_a_clis_daemon_in_its_own_tree_without_reading_the_machine(
    tmp_path: Path,
) -> None:
    # The double-forked, setsid daemon carries the CLI's mark: found while the CLI lives (its
    # descendant) and after it exited (reparented to the orchestrator), never for another
    # CLI's mark, and no process outside the orchestrator's own tree is read.
    result = run_subreaper(OWN_TREE, tmp_path)
    try:
        assert result["alive"] == [result["daemon"]]
        assert result["after"] == [result["daemon"]]
        assert result["theirs"] == []
    finally:
        kill_pid(result["daemon"])


REUSE = """
import json, signal, subprocess, time
import psutil
from orchestrator.process import procid, tree

first = subprocess.Popen(["sleep", "60"])
stray = psutil.Process(first.pid)
recorded = procid.ProcessId(first.pid, procid.current().host, procid.start_time(first.pid))
first.kill()
first.wait()
time.sleep(0.05)  # a later clock tick: the pid's next owner starts after it
with open("/proc/sys/kernel/ns_last_pid", "w") as f:
    f.write(str(first.pid - 1))
second = subprocess.Popen(["sleep", "60"])
reused = second.pid == first.pid
tree.signal_strays([stray], signal.SIGKILL)
time.sleep(0.2)
print(json.dumps({
    "reused": reused,
    "new_start_differs": procid.start_time(second.pid) != recorded.started,
    "signalled_the_newcomer": second.poll() is not None,
    "old_identity_alive": procid.is_alive(recorded),
    "stray_running": stray.is_running(),
}))
second.kill()
second.wait()
"""


# As root of a user namespace of its own, in a pid namespace of its own (with its own /proc).
IN_PID_NAMESPACE = [
    shutil.which("unshare") or "unshare",
    *("--user", "--map-root-user", "--pid", "--fork", "--mount-proc"),
]


def _pid_namespaces() -> bool:
    try:
        probe = subprocess.run([*IN_PID_NAMESPACE, "true"], capture_output=True)
    except FileNotFoundError:
        return False
    return probe.returncode == 0


# CI (CI=true) has them: there the test runs, and fails if they are missing.
@pytest.mark.skipif(
    not os.environ.get("CI") and not _pid_namespaces(),
    reason="no unprivileged pid namespaces here (CI=true runs it anyway)",
)
def test_a_pid_reused_by_another_process_is_never_signalled_nor_taken_for_the_old_one() -> None:
    # In a pid namespace of its own (where the next pid can be chosen), the pid of a killed
    # stray really goes to a new process.
    done = subprocess.run(
        [*IN_PID_NAMESPACE, sys.executable, "-c", REUSE],
        capture_output=True,
        text=True,
        timeout=patience(60),
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    assert result["reused"] and result["new_start_differs"]
    assert result["signalled_the_newcomer"] is False
    assert result["old_identity_alive"] is False
    assert result["stray_running"] is False
