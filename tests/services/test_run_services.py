"""A run's ``services:`` (issue 50) in ``council run`` as a process, on the scripted CLI: two
tasks side by side, each session with its own ``web`` service on port 3000 serving its own
worktree, whose verify commands bind port 4000 at the same time and see only their own data;
both land. A service that does not start fails its task, named with its log's tail, not as
the CLI's failure. As root and as a user who is not, and under the sandbox."""

from __future__ import annotations

import json
import os
import signal
from pathlib import Path
from typing import Any

import pytest

from tests.support.cli_process_helpers import (
    events,
    reap,
    scripted_clis,
    sleeping,
    spawn,
    wait_for,
)
from tests.support.council_process import council, task_record
from tests.support.scheduler_helpers import git, new_repo
from tests.support.spare_user import (
    as_users,
    council_run,
    git_as_root,
    spare_uid,
    user_dir,
)

PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else "python3"
TASKS = ("alpha", "beta")
# Binds port 4000 in its session's network and, given a place to meet, waits (bounded) until
# the other session's check holds port 4000 too; then reads its session's service on port
# 3000: its own task's file, never the other's.
CHECK = """\
import os, socket, sys, time, urllib.error, urllib.request
me, other, meet = sys.argv[1], sys.argv[2], sys.argv[3]
held = socket.socket()
held.bind(("127.0.0.1", 4000))
held.listen()
if meet != "-":
    open(os.path.join(meet, me), "w").close()
    deadline = time.monotonic() + 60
    while not os.path.exists(os.path.join(meet, other)):
        if time.monotonic() > deadline:
            sys.exit("the other session's check never bound port 4000")
        time.sleep(0.05)
url = os.environ["COUNCIL_SERVICE_WEB_URL"]
mine = urllib.request.urlopen(url + "/" + me + ".txt").read().decode().strip()
if mine != me:
    sys.exit("read " + repr(mine) + " for " + me)
try:
    urllib.request.urlopen(url + "/" + other + ".txt")
except urllib.error.HTTPError as exc:
    print("own data only:", mine, exc.code)
else:
    sys.exit("saw the other session's data")
"""


def _config(
    root: Path, repo: Path, services: dict[str, Any], *, first: str = "", **sections: Any
) -> Path:
    """Both tasks; with ``first``, one task (alpha) whose build does ``first`` before it
    writes, and whose check meets no other."""
    meet = root / "meet"
    meet.mkdir(exist_ok=True)

    def one(name: str, other: str) -> dict[str, Any]:
        alone = first or sections.get("sandbox", "none") != "none"
        build = f"{first}WRITE {name}.txt {name}"
        return {
            "id": name,
            "prompt": f"Write {name}.txt.",
            "files": [f"{name}.txt"],
            "verify": [[PYTHON, "check.py", name, other, "-" if alone else str(meet)]],
            "metadata": {"phase_instructions": {"build": build}},
        }

    tasks = [one("alpha", "beta")] if first else [one("alpha", "beta"), one("beta", "alpha")]

    data: dict[str, Any] = {
        "repo": str(repo),
        # The machine's Python runs the scripted CLI (``-I -S``, it imports nothing): a user
        # who is not root may not reach this one.
        "adapters": {"cli": {"type": "scripted", "executable": PYTHON, "options": {"delay": 0}}},
        "default_adapter": "cli",
        "workflow": {"phases": [{"name": "build"}]},
        "capacity": {"sessions": 2},
        "retry": {"max_retries": 0},
        "scheduler": {"tick": 0.05, "heartbeat_interval": 0.5, "stale_threshold": "10m"},
        "sandbox": "none",
        "services": services,
        **sections,
        "tasks": tasks,
    }
    config = root / "run.json"
    config.write_text(json.dumps(data))
    return config


def _repo(root: Path) -> Path:
    repo = new_repo(root)
    (repo / "check.py").write_text(CHECK)
    git(repo, "add", "check.py")
    git(repo, "commit", "-qm", "the check")
    return repo


WEB = {
    "web": {
        "command": [PYTHON, "-m", "http.server", "3000", "--bind", "127.0.0.1"],
        "port": 3000,
        "url": "http://{host}:{port}",
    }
}


def _left_under(root: Path) -> list[int]:
    """Processes still working under ``root`` (a service the run left behind)."""
    left = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                cwd = os.readlink(f"/proc/{entry}/cwd")
            except OSError:
                continue
            if Path(cwd).is_relative_to(root):
                left.append(int(entry))
    return left


def _lands_side_by_side(root: Path, uid: int | None, **sections: Any) -> None:
    repo = _repo(root)
    config = _config(root, repo, WEB, **sections)
    done = council_run(config, root, uid, timeout=150)
    said = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode == 0, said
    for name in TASKS:
        record = task_record(repo, name)
        assert record is not None and record["status"] == "done", (name, record, said)
        assert git_as_root(repo, "show", f"main:{name}.txt") == name
    logs = sorted((repo / ".council" / "logs" / "services").glob("*/service-web.log"))
    assert len(logs) == 2, logs
    assert _left_under(root) == []
    for kind in ("service.ready", "service.stopped"):
        said = [e["data"] for e in events(repo) if e["type"] == kind]
        assert sorted(d["task_id"] for d in said) == list(TASKS), (kind, said)
        assert {d["service"] for d in said} == {"web"}


@pytest.mark.parametrize("uid", as_users())
def test_two_sessions_on_one_port_each_see_their_own_and_land(
    uid: int | None, tmp_path: Path
) -> None:
    if uid is not None:
        uid = spare_uid()
    with user_dir(uid, tmp_path) as root:
        _lands_side_by_side(root, uid)


@pytest.mark.sandbox
def test_under_the_sandbox_the_checks_run_in_the_session_s_network(tmp_path: Path) -> None:
    _lands_side_by_side(tmp_path, None, sandbox="bubblewrap")


def test_a_service_that_does_not_start_fails_its_task_named(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    refuses = "echo the cluster refused to start >&2; exit 3"
    db = {"db": {"command": ["/bin/sh", "-c", refuses], "port": 5999, "start_timeout": 20}}
    config = _config(tmp_path, repo, db)
    done = council_run(config, tmp_path, None, timeout=120)
    said = done.stdout[-3000:] + done.stderr[-3000:]
    assert done.returncode != 0, said
    for name in TASKS:
        record = task_record(repo, name)
        assert record is not None and record["status"] == "failed", (name, record, said)
        error = record["error"]
        assert "service 'db'" in error and "the cluster refused to start" in error, error
        assert record["metadata"]["outcome"] == "service_failed", record["metadata"]
    failed = [e for e in events(repo) if e["type"] == "service.failed"]
    assert sorted(e["data"]["task_id"] for e in failed) == list(TASKS), failed
    assert all(e["data"]["service"] == "db" and e["level"] == "error" for e in failed)
    assert "the cluster refused to start" in done.stdout + done.stderr
    assert _left_under(tmp_path) == []
    # `council status` shows each session's service as failed, with why: never its log.
    shown = _services_shown(config, tmp_path)
    for name in TASKS:
        (db,) = shown[name]
        assert (db["name"], db["state"], db["port"]) == ("db", "failed", 5999), shown
        assert db["why"].startswith("ended before it was ready"), db
        assert "refused" not in db["why"], db
    table = council(["status", str(config)], cwd=tmp_path, timeout=60)
    assert table.returncode == 0, table.stderr[-2000:]
    assert "services" in table.stdout and table.stdout.count("db failed") == 2, table.stdout


def _services_shown(
    config: Path, cwd: Path, *, recorded: bool = True
) -> dict[str, list[dict[str, Any]]]:
    """Task id -> its services, as ``council status --json`` shows them (``recorded=False``:
    none while the run has not been recorded yet)."""
    status = council(["status", str(config), "--json"], cwd=cwd, timeout=60)
    if status.returncode == 2 and not recorded and "no run has been recorded" in status.stderr:
        return {}
    assert status.returncode == 0, status.stderr[-2000:]
    return {t["task_id"]: t["services"] for t in json.loads(status.stdout)["tasks"]}


def test_status_shows_a_session_s_services_while_it_runs_and_after(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    gate = tmp_path / "go"
    config = _config(tmp_path, repo, WEB, first=f"WAIT_FOR {gate} 120\n")
    process = spawn("run", config, cwd=tmp_path)
    ready = [{"name": "web", "state": "ready", "port": 3000, "why": None}]
    try:
        wait_for(
            lambda: _services_shown(config, tmp_path, recorded=False).get("alpha") == ready,
            "the session's web service ready in `council status --json`",
            60,
        )
        table = council(["status", str(config)], cwd=tmp_path, timeout=60)
        assert "web ready" in table.stdout, table.stdout
        gate.touch()
        out, err = process.communicate(timeout=120)
    finally:
        gate.touch()
        reap(process)
    assert process.returncode == 0, out[-2000:] + err[-2000:]
    stopped = [{"name": "web", "state": "stopped", "port": 3000, "why": None}]
    assert _services_shown(config, tmp_path) == {"alpha": stopped}
    table = council(["status", str(config)], cwd=tmp_path, timeout=60)
    assert "web stopped" in table.stdout, table.stdout


def test_a_run_config_s_service_names_a_phase_of_the_workflow(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    web = {"web": {**WEB["web"], "phases": ["biuld"]}}
    config = _config(tmp_path, repo, web)
    done = council_run(config, tmp_path, None, extra=("--dry-run",), timeout=60)
    assert done.returncode != 0
    assert "services.web.phases[0]" in done.stdout + done.stderr, done.stdout + done.stderr


def _serving(root: Path) -> list[int]:
    """The ``web`` services under ``root`` (``_left_under`` that run ``http.server``)."""
    found = []
    for pid in _left_under(root):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                if b"http.server" in cmdline.read():
                    found.append(pid)
        except OSError:
            continue
    return found


def test_services_go_with_a_killed_orchestrator_and_come_back_on_resume(tmp_path: Path) -> None:
    repo = _repo(tmp_path)
    gate = tmp_path / "go"
    config = _config(tmp_path, repo, WEB, first=f"WAIT_FOR {gate} 120\n")
    process = spawn("run", config, cwd=tmp_path)
    try:
        wait_for(lambda: bool(_serving(tmp_path)), "the session's web service", 60)
        wait_for(lambda: any(map(sleeping, scripted_clis(tmp_path))), "the build's CLI", 60)
        process.send_signal(signal.SIGKILL)
        process.communicate(timeout=30)
    finally:
        reap(process)
    wait_for(lambda: not _serving(tmp_path), "the service ended with its orchestrator", 30)
    for pid in scripted_clis(tmp_path):  # in a process group of its own: not killed with it
        os.kill(pid, signal.SIGKILL)
    wait_for(lambda: not scripted_clis(tmp_path), "the CLI gone", 10)
    gate.touch()

    resumed = council(["resume", str(config), "--json"], cwd=tmp_path, timeout=120)

    assert resumed.returncode == 0, resumed.stdout[-2000:] + resumed.stderr[-2000:]
    record = task_record(repo, "alpha")
    assert record is not None and record["status"] == "done", record
    assert git_as_root(repo, "show", "main:alpha.txt") == "alpha"
    assert _left_under(tmp_path) == []


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_a_service_runs_as_confined_as_the_session_s_commands(
    uid: int | None, tmp_path: Path
) -> None:
    # A service runs code the CLI wrote (a dev server, the repository's scripts) for the whole
    # session: under the sandbox it reaches no login of the user's and no part of git's
    # shared setup, as the session's verify commands do not. Before, it ran with the
    # orchestrator's rights over every file.
    if uid is not None:
        uid = spare_uid()
    with user_dir(uid, tmp_path) as root:
        repo = _repo(root)
        home = root / "home"
        (home / ".ssh").mkdir(parents=True)
        secret = "ssh-key-of-the-user-0123456789"
        (home / ".ssh" / "id_ed25519").write_text(secret + "\n")
        planted = repo / ".git" / "hooks" / "planted-by-a-service"
        probe = (
            f"cat {home}/.ssh/id_ed25519 || echo the key is out of reach; "
            f"touch {planted} || echo git is out of reach; "
            f"exec {PYTHON} -m http.server 3000 --bind 127.0.0.1"
        )
        web = {"web": {**WEB["web"], "command": ["/bin/sh", "-c", probe]}}
        config = _config(root, repo, web, sandbox="bubblewrap")
        done = council_run(config, root, uid, env={"HOME": str(home)}, timeout=150)
        said = done.stdout[-3000:] + done.stderr[-3000:]
        assert done.returncode == 0, said
        logs = sorted((repo / ".council" / "logs" / "services").glob("*/service-web.log"))
        assert len(logs) == 2, logs
        for log in logs:
            text = log.read_text()
            assert secret not in text and "the key is out of reach" in text, text
            assert "git is out of reach" in text, text
        assert not planted.exists()


# The CLI's program as the session starts it: it puts its task's name in its worktree, asks
# its session's service (which serves that worktree) for it, leaves what it got in
# ``seen-<task>.txt`` and goes on as the scripted CLI. Its own session's server answers with its
# own name; another session's would answer with another's; none at all: unreachable.
FETCHING_CLI = """\
#!/bin/sh
{python} -I -S -c '
import os, urllib.error, urllib.request
task = os.path.basename(os.getcwd()).rsplit(".", 1)[0]
with open("me.txt", "w") as me:
    me.write(task)
try:
    url = os.environ["COUNCIL_SERVICE_WEB_URL"] + "/me.txt"
    got = urllib.request.urlopen(url, timeout=10).read().decode().strip()
except urllib.error.HTTPError as exc:
    got = str(exc.code)
except OSError as exc:
    got = "unreachable: " + str(exc)
os.remove("me.txt")
with open("seen-" + task + ".txt", "w") as seen:
    seen.write(got + "\\n")
'
exec {python} "$@"
"""


@pytest.mark.sandbox
@pytest.mark.parametrize("uid", as_users())
def test_a_confined_cli_reaches_its_own_session_s_services(uid: int | None, tmp_path: Path) -> None:
    """Under the sandbox with an open network, the session's CLI runs in the session's own
    network: `COUNCIL_SERVICE_WEB_URL` answers it, from its own session's server, never the
    other session's, side by side."""
    if uid is not None:
        uid = spare_uid()
    with user_dir(uid, tmp_path) as root:
        repo = _repo(root)
        cli = root / "fetching-cli"
        cli.write_text(FETCHING_CLI.format(python=PYTHON))
        cli.chmod(0o755)
        config = _config(root, repo, WEB, sandbox="bubblewrap")
        data = json.loads(config.read_text())
        data["adapters"]["cli"]["executable"] = str(cli)
        for task in data["tasks"]:
            task["files"].append(f"seen-{task['id']}.txt")
        config.write_text(json.dumps(data))
        done = council_run(config, root, uid, timeout=150)
        said = done.stdout[-3000:] + done.stderr[-3000:]
        assert done.returncode == 0, said
        for name in TASKS:
            assert git_as_root(repo, "show", f"main:seen-{name}.txt") == name, said


@pytest.mark.sandbox
def test_a_confined_service_is_shown_its_session_s_dns_forwarder(tmp_path: Path) -> None:
    """Under the sandbox with an open network, a service resolves names through its session's
    way out (the uplink's DNS forwarder at /etc/resolv.conf), as its verify commands do."""
    from orchestrator.sandbox import network

    if network.problem() is not None:
        pytest.fail(f"the machine gives no network namespace: {network.problem()}")
    repo = _repo(tmp_path)
    shown = f"cat /etc/resolv.conf; exec {PYTHON} -m http.server 3000 --bind 127.0.0.1"
    web = {"web": {**WEB["web"], "command": ["/bin/sh", "-c", shown]}}
    config = _config(tmp_path, repo, web, sandbox="bubblewrap")
    done = council_run(config, tmp_path, None, timeout=150)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    logs = sorted((repo / ".council" / "logs" / "services").glob("*/service-web.log"))
    assert len(logs) == 2 and all("nameserver 10.0.2.3" in log.read_text() for log in logs)
