"""What the team benchmarks share: a throwaway PostgreSQL cluster with a fresh database per
round, a bare remote and workstation clones of it, run configs, and reading what landed.

The cluster is ``LocalCluster`` (the machine's own ``initdb``/``pg_ctl``, as ``council db up``
and the tests use it), started once per benchmark in a directory the server's user can reach
(as root the server runs as ``postgres``). Each round gets a database of its own, copied from a
template that is already migrated, so no round times a schema migration.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg

from orchestrator.state.postgres.cluster import LocalCluster, find_server_binaries
from orchestrator.state.postgres.schema import migrate

BASE = "main"
# The installed ``council`` script beside this interpreter, as a user starts it.
_SCRIPT = Path(sys.executable).parent / "council"
COUNCIL = [str(_SCRIPT)] if _SCRIPT.exists() else [sys.executable, "-m", "orchestrator"]
ENV = {
    **os.environ,
    "COUNCIL_DISABLE_PLUGINS": "1",  # built-in adapters only: the run must not depend on plugins
    # This checkout's code, whichever install the interpreter has (a worktree's bench
    # measured the installed checkout's code before).
    "PYTHONPATH": os.pathsep.join(
        filter(None, [str(Path(__file__).resolve().parent.parent), os.environ.get("PYTHONPATH")])
    ),
    "GIT_AUTHOR_NAME": "bench",
    "GIT_AUTHOR_EMAIL": "bench@localhost",
    "GIT_COMMITTER_NAME": "bench",
    "GIT_COMMITTER_EMAIL": "bench@localhost",
}
TEMPLATE = "council_bench_template"
TRAILERS = "--format=%(trailers:key=Council-Task,valueonly,separator=%x2C)"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def git(cwd: Path, *args: str) -> str:
    done = subprocess.run(
        ["git", "-C", str(cwd), *args], capture_output=True, text=True, env=ENV, check=True
    )
    return done.stdout


def cpu_of_children() -> float:
    """CPU seconds of every process this one started and waited for (with theirs)."""
    usage = os.times()
    return usage.children_user + usage.children_system


# -- PostgreSQL ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Cluster:
    local: LocalCluster

    def admin(self) -> psycopg.Connection[tuple[object, ...]]:
        return psycopg.connect(self.local.url("postgres"), autocommit=True)

    def fresh_database(self, name: str) -> str:
        """The URL of a new, migrated, empty database ``name`` (dropped first if it exists)."""
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{name}" TEMPLATE {TEMPLATE}')
        return self.local.url(name)

    def drop(self, name: str) -> None:
        with self.admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')

    def dump(self, name: str, directory: Path) -> None:
        """The database's events and task histories as JSON lines in ``directory``: what a
        failed round leaves for whoever reads it after the cluster is gone."""
        queries = {
            "events": "SELECT id, at, type, level, data FROM council.events ORDER BY id",
            "task_history": "SELECT task_id, version, doc FROM council.task_history "
            "ORDER BY task_id, version",
        }
        with psycopg.connect(self.local.url(name), autocommit=True) as conn:
            for table, query in queries.items():
                rows = conn.execute(query).fetchall()
                lines = (json.dumps(list(row), default=str) for row in rows)
                (directory / f"{table}.jsonl").write_text("".join(f"{x}\n" for x in lines))

    def landing_seconds(self, name: str) -> tuple[list[float], int]:
        """How long each train held the team's merge lock (its landings' ``merge.completed``
        timings, total less the wait for the lock, once per train: the landings one push
        made share its tip), and how many landings there were. Trains are serial, so their
        sum bounds the run."""
        query = (
            "SELECT data->>'base_after', "
            "(data->'timings'->>'total')::float - (data->'timings'->>'lock_wait')::float "
            "FROM council.events WHERE type = 'merge.completed' ORDER BY id"
        )
        with psycopg.connect(self.local.url(name), autocommit=True) as conn:
            rows = conn.execute(query).fetchall()
        trains: dict[str, float] = {}
        for tip, seconds in rows:
            trains[str(tip)] = max(trains.get(str(tip), 0.0), float(seconds))
        return list(trains.values()), len(rows)

    def server_cpu(self) -> float:
        """CPU seconds the server has used so far: the postmaster, its live processes
        (checkpointer, WAL writer, open connections' backends) and the backends that ended.
        The server is not this process's child, so ``getrusage`` never sees it; /proc does."""
        postmaster = int((self.local.data / "postmaster.pid").read_text().split()[0])
        total = 0.0
        for entry in Path("/proc").iterdir():
            if not entry.name.isdigit():
                continue
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:  # it ended meanwhile
                continue
            pid, parent = int(entry.name), int(fields[1])
            if pid == postmaster:  # its own time and that of the backends it reaped
                total += sum(int(value) for value in fields[11:15])
            elif parent == postmaster:
                total += int(fields[11]) + int(fields[12])
        return total / _CLOCK_TICKS


@contextmanager
def local_cluster() -> Iterator[Cluster]:
    """A PostgreSQL cluster for the benchmark's whole run, with a migrated template."""
    find_server_binaries()  # RunError saying where it looked, before anything is made
    directory = Path(tempfile.mkdtemp(prefix="council-bench-pg-"))
    directory.chmod(0o755)  # as root the server runs as `postgres`, which must reach it
    local = LocalCluster(directory / "cluster")
    try:
        asyncio.run(local.up())
        cluster = Cluster(local)
        with cluster.admin() as conn:
            conn.execute(f"CREATE DATABASE {TEMPLATE}")
        asyncio.run(_migrate(local.url(TEMPLATE)))
        yield cluster
    finally:
        try:
            asyncio.run(local.down())
        finally:
            shutil.rmtree(directory, ignore_errors=True)
            shutil.rmtree(local.socket_dir, ignore_errors=True)


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        await migrate(conn)


# -- repositories -------------------------------------------------------------------------


def make_remote(root: Path, name: str = "remote.git") -> Path:
    """A bare repository whose ``main`` has one commit: the team's shared remote."""
    remote = root / name
    seed = root / f"{name}-seed"
    git(root, "init", "-q", "--bare", "-b", BASE, str(remote))
    git(root, "init", "-q", "-b", BASE, str(seed))
    (seed / "README.md").write_text("# bench\n")
    git(seed, "add", "README.md")
    git(seed, "commit", "-q", "-m", "first")
    git(seed, "push", "-q", str(remote), BASE)
    shutil.rmtree(seed)
    return remote


def clone(remote: Path, path: Path) -> Path:
    """A workstation's clone, ``main`` checked out as a user's would be."""
    git(path.parent, "clone", "-q", str(remote), str(path))
    git(path, "config", "user.name", "bench")
    git(path, "config", "user.email", "bench@localhost")
    return path


def landed(repo: Path) -> list[str]:
    """The ``Council-Task`` trailer of every commit on ``main``'s first-parent line (a task
    landed twice appears twice)."""
    out = git(repo, "log", "--first-parent", TRAILERS, BASE)
    return [task for line in out.splitlines() for task in line.strip().split(",") if task]


def check_landed(repo: Path, task_ids: list[str]) -> None:
    """Every task landed on ``repo``'s ``main`` exactly once, and nothing else did."""
    found = landed(repo)
    if sorted(found) != sorted(task_ids):
        twice = sorted({task for task in found if found.count(task) > 1})
        missing = sorted(set(task_ids) - set(found))
        raise RuntimeError(
            f"{repo}: {len(found)} landings for {len(task_ids)} tasks; "
            f"missing {missing[:10]}, landed more than once {twice[:10]}"
        )


# -- run configs --------------------------------------------------------------------------


def task(number: int, *, sleep: float = 0.0) -> dict[str, Any]:
    """Task ``tNN``: its build (after sleeping ``sleep`` seconds) writes ``tasks/tNN.txt``, a
    file of its own, so no two tasks conflict."""
    task_id = f"t{number:02d}"
    build = f"WRITE tasks/{task_id}.txt done {task_id}"
    if sleep:
        build = f"SLEEP {sleep}\n{build}"
    return {
        "id": task_id,
        "prompt": f"Write tasks/{task_id}.txt.",
        "files": [f"tasks/{task_id}.txt"],
        "metadata": {"phase_instructions": {"build": build}},
    }


def run_config(
    repo: Path, tasks: list[dict[str, Any]], sessions: int, state: dict[str, Any]
) -> dict[str, Any]:
    """One ``build`` phase of the offline ``scripted`` CLI, no verify commands, the default
    scheduler settings (tick, heartbeats) as a user's run has them."""
    return {
        "repo": str(repo),
        "base_branch": BASE,
        "adapters": {"cli": {"type": "scripted", "options": {"delay": 0}}},
        "default_adapter": "cli",
        "capacity": {"sessions": sessions},
        "workflow": {"phases": [{"name": "build"}]},
        "verify": [],
        "state": state,
        "tasks": tasks,
    }


def write_config(path: Path, config: dict[str, Any]) -> Path:
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


# -- council processes --------------------------------------------------------------------


@dataclass(frozen=True)
class Finished:
    config: Path
    code: int
    stdout: str
    stderr: str


def run_processes(configs: list[Path], env: dict[str, str], timeout: float) -> float:
    """``council run <config> --json`` for every config at once; wall seconds from the first
    start to the last exit. ``RuntimeError`` with each process's exit code, stderr and
    ``council status --json`` when one fails or the whole does not end within ``timeout``."""
    started = time.perf_counter()
    processes = [
        subprocess.Popen(
            [*COUNCIL, "run", str(config), "--json"],
            cwd=config.parent,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for config in configs
    ]
    finished: list[Finished] = []
    timed_out = False
    for config, process in zip(configs, processes, strict=True):
        left = max(0.1, timeout - (time.perf_counter() - started))
        try:
            out, err = process.communicate(timeout=left)
        except subprocess.TimeoutExpired:
            timed_out = True
            process.kill()
            out, err = process.communicate()
        finished.append(Finished(config, process.returncode, out, err))
    wall = time.perf_counter() - started
    if timed_out or any(done.code != 0 for done in finished):
        raise RuntimeError(failure_report(finished, env, timed_out, timeout, wall))
    return wall


def failure_report(
    finished: list[Finished], env: dict[str, str], timed_out: bool, timeout: float, wall: float
) -> str:
    """What happened, for the lead: each process's exit code and stderr, and ``council status
    --json``; the whole of each is also written beside the configs (kept on failure)."""
    directory = finished[0].config.parent
    what = (
        f"timed out after {timeout:g} s" if timed_out else f"failed (all exited after {wall:.1f} s)"
    )
    lines = [f"team run {what}; the whole output is kept in {directory}"]
    for done in finished:
        (directory / f"{done.config.stem}.stderr").write_text(done.stderr)
        (directory / f"{done.config.stem}.stdout").write_text(done.stdout)
        lines.append(f"--- council run {done.config} exited {done.code}; stderr (tail):")
        lines.append(done.stderr[-3000:])
    status = subprocess.run(
        [*COUNCIL, "status", str(finished[0].config), "--json"],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    (directory / "status.json").write_text(status.stdout + status.stderr)
    try:
        report = json.loads(status.stdout)
        failed = [t for t in report.get("tasks", []) if t.get("status") != "done"]
        summary = json.dumps({"totals": report.get("totals"), "not_done": failed}, indent=1)
    except ValueError:
        summary = status.stdout[-4000:] + status.stderr[-2000:]
    lines.append(f"--- council status {finished[0].config} --json (exit {status.returncode}):")
    lines.append(summary)
    return "\n".join(lines)
