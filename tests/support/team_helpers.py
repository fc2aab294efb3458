"""Team mode as a team runs it: one bare remote, several clones ("workstations"), one
PostgreSQL database, and ``council run`` started in each clone as a real process.

``Team`` builds it in one directory (the server's own files live elsewhere: the clients only
connect over the cluster's socket): each workstation has its clone and its own run config
beside it. Helpers read what landed on the remote's base: the ``Council-Task`` trailers
on its first-parent history, and the files of its tree.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg

from tests.support.cli_process_helpers import COUNCIL, ENV, reap, wait_for
from tests.support.merge_repo import git
from tests.support.timing import patience

__all__ = ["Team", "team_task", "wait_for"]

CONFIG = """\
repo: {repo}
adapters:
  cli: {{type: scripted, options: {{delay: 0}}}}
default_adapter: cli
capacity: {{sessions: {sessions}}}
workflow: {{phases: [{{name: build}}]}}
retry: {{max_retries: 3, backoff_initial: 0.05, backoff_max: 0.3}}
scheduler: {{tick: 0.05, heartbeat_interval: {heartbeat}, stale_threshold: {stale}}}
state: {{backend: postgresql}}
tasks:
"""


def team_task(number: int, *, sleep: float = 0.0) -> dict[str, Any]:
    """Task ``tNN``: its build writes ``tasks/tNN.txt`` (after sleeping ``sleep`` seconds)."""
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


@dataclass
class Team:
    root: Path
    dsn: str
    remote: Path = field(init=False)
    processes: dict[str, subprocess.Popen[str]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.remote = self.root / "remote.git"
        seed = self.root / "seed"
        git(self.root, "init", "-q", "--bare", "-b", "main", str(self.remote))
        git(self.root, "init", "-q", "-b", "main", str(seed))
        (seed / "README.md").write_text("# team\n")
        git(seed, "add", "README.md")
        git(seed, "commit", "-q", "-m", "first")
        git(seed, "push", "-q", str(self.remote), "main")

    def workstation(
        self,
        name: str,
        tasks: Sequence[dict[str, Any]],
        *,
        sessions: int = 3,
        heartbeat: float = 0.5,
        stale: float = 10.0,
        readable: Path | None = None,
    ) -> Path:
        """Clone the remote as workstation ``name`` and write its run config; the config.
        ``readable``: a directory of the test's the CLIs may read under the sandbox (a gate)."""
        clone = self.root / name
        git(self.root, "clone", "-q", str(self.remote), str(clone))
        config = self.root / f"{name}.yaml"
        text = CONFIG.format(repo=clone, sessions=sessions, heartbeat=heartbeat, stale=f"{stale}s")
        if readable is not None:
            text = f"sandbox: {{read: [{readable}]}}\n{text}"
        config.write_text(text + "".join(f"  - {json.dumps(t)}\n" for t in tasks))
        return config

    def env(self) -> dict[str, str]:
        return {**ENV, "COUNCIL_DATABASE_URL": self.dsn}

    def start(
        self, name: str, *extra: str, env: dict[str, str] | None = None
    ) -> subprocess.Popen[str]:
        """``council run <name>.yaml --json`` in the background (``env`` added to its
        environment)."""
        process = subprocess.Popen(
            [*COUNCIL, "run", str(self.root / f"{name}.yaml"), "--json", *extra],
            cwd=self.root,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env={**self.env(), **(env or {})},
        )
        self.processes[name] = process
        return process

    def council(self, *args: str, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [*COUNCIL, *args],
            cwd=self.root,
            capture_output=True,
            text=True,
            env=self.env(),
            timeout=patience(timeout),
        )

    def finish(self, name: str, timeout: float = 120) -> tuple[int, dict[str, Any], str]:
        """Wait for workstation ``name``'s run: exit code, its JSON report, its stderr."""
        process = self.processes[name]
        out, err = process.communicate(timeout=patience(timeout))
        report = json.loads(out) if out.strip().startswith("{") else {}
        return process.returncode, report, err

    def signal(self, name: str, signum: int) -> None:
        os.kill(self.processes[name].pid, signum)

    def stop_all(self) -> None:
        for process in self.processes.values():
            if process.poll() is None:
                os.kill(process.pid, signal.SIGCONT)
            reap(process)
            for pipe in (process.stdout, process.stderr):
                if pipe is not None:
                    pipe.close()

    def human_push(self, clone: Path, name: str, text: str) -> str:
        """A person commits ``name`` on the remote's base from a clone of their own (made at
        ``clone`` on first use) and pushes it the ordinary way, trying again on a lost race."""
        if not clone.exists():
            git(self.root, "clone", "-q", str(self.remote), str(clone))
        for _ in range(30):
            git(clone, "fetch", "-q", "origin")
            git(clone, "reset", "-q", "--hard", "origin/main")
            (clone / name).write_text(text)
            git(clone, "add", name)
            git(clone, "commit", "-q", "-m", f"human: {name}")
            pushed = subprocess.run(
                ["git", "-C", str(clone), "push", "-q", "origin", "HEAD:main"],
                capture_output=True,
                env=ENV,
                check=False,
            )
            if pushed.returncode == 0:
                return git(clone, "rev-parse", "HEAD")
            time.sleep(0.05)
        raise AssertionError("the human push kept losing the race")

    def show(self, path: str) -> str:
        return git(self.remote, "show", f"main:{path}")

    def events(self, *types: str) -> list[dict[str, Any]]:
        """The run's events of these types as the database keeps them, oldest first."""
        with psycopg.connect(self.dsn) as conn:
            rows = conn.execute(
                "SELECT type, data FROM council.events WHERE type = ANY(%s) ORDER BY id",
                (list(types),),
            ).fetchall()
        return [{"type": kind, **data} for kind, data in rows]

    # -- what landed --------------------------------------------------------------------

    def landed_tasks(self) -> list[str]:
        """The ``Council-Task`` trailer of every commit on the remote base's first parent
        line, oldest first (a task landed twice appears twice)."""
        out = git(
            self.remote,
            "log",
            "--first-parent",
            "--reverse",
            "--format=%(trailers:key=Council-Task,valueonly,separator=%x2C)",
            "main",
        )
        return [line.strip() for line in out.splitlines() if line.strip()]

    def base_files(self) -> dict[str, str]:
        """Path -> content of every file under ``tasks/`` on the remote's base."""
        names = git(self.remote, "ls-tree", "-r", "--name-only", "main", "tasks/").split()
        return {name: git(self.remote, "show", f"main:{name}") for name in names}
